"""model.py — the nanopangu decoder-only Transformer, LLaMA-style as in PanGu-π Pro: pre-norm
RMSNorm, rotary position embeddings (RoPE), SwiGLU feed-forward, causal grouped-query attention, no
biases. Plain PyTorch; on CUDA the Triton kernels in kernels/ replace RMSNorm and attention, on a
CPU two gradients are written out (RMSNormCPU, HeadLoss). The paper's architecture tweak (paper,
Architecture Tweak; ../shared/PAPER.md §2) is PRESETS; its compact tokenizer (paper, Compact
Tokenizer; PAPER.md §1) is `vocab_size` and param_count()'s split."""
import importlib
import math
import os
import pickle
from dataclasses import dataclass, asdict, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
# Activation checkpointing, named for what it does (checkpoint FILES are at the end): forward keeps
# only a function's inputs; backward runs it again for the activations it needs.
from torch.utils.checkpoint import checkpoint as recompute_in_backward


@dataclass
class ModelConfig:
    vocab_size: int = 0          # rows of the embedding / LM head; 0 = from the data (train.py)
    n_layer: int = 6
    n_embd: int = 256            # hidden size C
    n_head: int = 4              # query heads; head size D = n_embd // n_head
    n_kv_head: int = 0           # key/value heads (grouped-query attention); 0 = n_head (plain MHA)
    ffn_ratio: float = 8 / 3     # SwiGLU hidden = ffn_ratio * n_embd, rounded UP to ffn_multiple
    ffn_multiple: int = 64
    block_size: int = 256        # context length the model is trained for (RoPE has no hard limit,
    rope_base: float = 10000.0   #   but train.py refuses to go past it)
    norm_eps: float = 1e-5
    tie_embeddings: bool = False  # PanGu-π Pro unties them (official LLM1B config)
    use_kernels: bool = True     # Triton kernels for CUDA tensors (kernels/); PyTorch elsewhere

    head_dim = property(lambda self: self.n_embd // self.n_head)              # D
    kv_heads = property(lambda self: self.n_kv_head or self.n_head)            # Hkv
    ffn_hidden = property(lambda self: self.ffn_multiple * math.ceil(        # F; pangu-1b-pro:
        self.ffn_ratio * self.n_embd / self.ffn_multiple))    # 1792 * 8/3 = 4778.7 -> (x 256) 4864

    def validate(self):
        """One-line ValueErrors for shapes that cannot work, before any tensor is allocated."""
        for name in ("n_layer", "n_embd", "n_head", "block_size", "ffn_multiple", "ffn_ratio", "rope_base", "norm_eps"):
            if not getattr(self, name) > 0:                  # `not > 0` also catches nan
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        H, Hkv = self.n_head, self.n_kv_head
        for bad, why in ((Hkv < 0, f"n_kv_head={Hkv}: use 0 (= n_head) or a divisor of n_head"),
                         (self.n_embd % H, f"n_embd={self.n_embd} is not divisible by n_head={H}; pick another"),
                         (self.head_dim % 2, f"head size {self.head_dim} is odd; RoPE turns pairs of channels"),
                         (H % self.kv_heads, f"n_kv_head={Hkv} must divide n_head={H} (grouped-query attention)"),
                         (self.vocab_size <= 0, "vocab_size is not set: train.py takes it from the data's meta.json")):
            if bad:
                raise ValueError(why)
        return self

# ---- Presets (paper, Architecture Tweak; ../shared/PAPER.md §2): at ~1B parameters depth matters
# most: about 20 layers with an FFN expansion near 2.7–2.8 [reported] balance quality and speed.
# Unnamed fields keep ModelConfig's defaults. vocab_size comes from the data: the tokenizer's ids
# padded to a multiple of 64 (the paper's "48k" = 48,000 tokens + <|endoftext|> -> 48,064 rows).
#   pangu-1b-pro   — official configs/LLM1B.py [code]: 20 x 1792, 14 heads of 128, FFN 4864,
#                    context 2048, untied, eps 1e-5: ~0.95B parameters, ~18% in embedding + head.
#   pangu-1.5b-pro — 22 x 2048 [code figure]; heads and FFN NOT published: 16 x 128, FFN 7168
#                    (3.5) are OUR ASSUMPTION, for ~1.5B in all.
#   baseline-1b    — like the paper's PanGu-π-1B: 12 x 2048, ~100k vocabulary (100,883 tokens
#                    [code figure]; ours: cl100k_base's 100,277): ~40% in embedding + head.
#   tiny / small   — CPU: `tiny` learns visibly in minutes on 2 cores; `small` is to inherit from.
PRESETS = {
    "tiny":           ModelConfig(n_layer=8, n_embd=256, n_head=4, ffn_multiple=64, block_size=256),
    "small":          ModelConfig(n_layer=12, n_embd=512, n_head=8, ffn_multiple=64, block_size=512),
    "pangu-1b-pro":   ModelConfig(n_layer=20, n_embd=1792, n_head=14, ffn_multiple=256, block_size=2048),
    "pangu-1.5b-pro": ModelConfig(n_layer=22, n_embd=2048, n_head=16, ffn_multiple=256, block_size=2048, ffn_ratio=3.5),
    "baseline-1b":    ModelConfig(n_layer=12, n_embd=2048, n_head=16, ffn_multiple=256, block_size=2048),
}
# Tokenizer ids of the paper's vocabularies, for `python model.py` and planning without data.
PRESET_N_VOCAB = {"pangu-1b-pro": 48_001, "pangu-1.5b-pro": 48_001, "baseline-1b": 100_277}
# The loss applies the LM head to this many rows at a time (head_loss): 8,192 x 48,064 fp32 logits
# = 1.6 GB at any batch, and a matmul of 8,192 rows still runs at full speed. CPU batches: 1 chunk.
LOSS_CHUNK_ROWS = 8192
VOCAB_MULTIPLE = 64   # embedding rows are padded to a multiple of this (faster matmuls), never used


def padded_vocab(n_vocab):
    return VOCAB_MULTIPLE * math.ceil(n_vocab / VOCAB_MULTIPLE)


def model_config(preset="tiny", **overrides):
    """A preset with fields replaced, e.g. model_config("tiny", n_layer=4, vocab_size=16_000)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    names = {f.name for f in fields(ModelConfig)}
    if unknown := sorted(set(overrides) - names):
        raise ValueError(f"unknown model option(s) {unknown}; ModelConfig has {sorted(names)}")
    return ModelConfig(**{**asdict(PRESETS[preset]), **overrides})


def resolve_device(name):
    """The device --device=name means: "auto" = a CUDA GPU, else Apple's MPS (kernels off, fp32),
    else the CPU; "cpu", "cuda", "cuda:N" and "mps" are checked (one-line ValueError)."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if gpus else "mps" if mps else "cpu"
    kind, _, index = name.partition(":")
    if name not in ("cpu", "mps", "cuda") and not (kind == "cuda" and index.isdigit()):
        raise ValueError(f"--device={name}: choose auto, cpu, cuda, cuda:N or mps")
    if kind == "cuda" and not gpus:
        raise ValueError(f"--device={name} but no CUDA GPU is visible to PyTorch; use --device=cpu or auto")
    if kind == "cuda" and int(index or 0) >= gpus:
        raise ValueError(f"--device={name} but PyTorch sees {gpus} GPU(s): cuda:0 to cuda:{gpus - 1}")
    if name == "mps" and not mps:
        raise ValueError("--device=mps but this PyTorch has no MPS (Apple GPU); use --device=cpu")
    return name


# ---- The one switch between Triton kernels and plain PyTorch -----------------------------------
def is_cuda(tensor):     # its own function so that tests can swap in `lambda t: True` and run the
    return tensor.is_cuda    # kernel path on CPU tensors, in Triton's interpreter


def use_kernel(config, name, *tensors):
    """Whether kernels/<name>.py ("rmsnorm" or "attention") runs on these tensors: kernels are on,
    the tensors on CUDA, and the kernel takes their shapes and dtypes (its unsupported() says, e.g.
    attention: head sizes 16/32/64/128). Imported only then: the CPU path never loads triton."""
    return (config.use_kernels and is_cuda(tensors[0])
            and importlib.import_module(f"kernels.{name}").unsupported(*tensors) is None)


def kernel_paths(config, device):
    """Which path RMSNorm and attention take on `device`, as one line for a script to print once,
    e.g. "kernels: rmsnorm Triton, attention PyTorch (head size 96; ...)". Shapes only (meta)."""
    if not (config.use_kernels and torch.device(device).type == "cuda"):
        return "kernels: plain PyTorch " + ("(CUDA only)" if config.use_kernels else "(use_kernels is off)")
    x, q = (torch.empty(1, n, device="meta") for n in (config.n_embd, config.head_dim))
    why_not = {"rmsnorm": importlib.import_module("kernels.rmsnorm").unsupported(x, x[0]),
               "attention": importlib.import_module("kernels.attention").unsupported(q, q, q)}
    return "kernels: " + ", ".join(f"{name} " + (f"PyTorch ({why})" if why else "Triton")
                                   for name, why in why_not.items())


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x²) + eps) * weight: LayerNorm without the mean and bias (as LLaMA)."""
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.weight = nn.Parameter(torch.ones(config.n_embd))

    def forward(self, x, residual=None):
        """norm(x). With `residual` (Block's fused CUDA path): (norm(x + residual), x + residual)"""
        w, eps = self.weight, self.config.norm_eps
        if residual is not None or use_kernel(self.config, "rmsnorm", x, w):
            from kernels.rmsnorm import rms_norm      # a bf16 branch joins the fp32 stream in fp32
            return rms_norm(x if residual is None else x.to(residual.dtype), w, eps, residual)
        if x.is_cpu and x.dtype == torch.float32:   # F.rms_norm: no fused CPU backward (torch 2.13)
            return RMSNormCPU.apply(x.flatten(0, -2), w, eps).view_as(x)
        return F.rms_norm(x, (x.size(-1),), w, eps)


class RMSNormCPU(torch.autograd.Function):
    """RMSNorm of rows x (N, C) with its gradient written out. On a CPU F.rms_norm runs ~6 ops
    forward and ~12 backward, each a pass over (N, C); this saves x and 1/rms only and does
    backward's two sums as matrix-vector products. (4096, 384), 1 thread: 22 -> 11 ms fwd + bwd."""
    @staticmethod
    def forward(ctx, x, weight, eps):
        rstd = (x.norm(dim=-1, keepdim=True).square_() / x.size(-1) + eps).rsqrt_()  # (N, 1)
        ctx.save_for_backward(x, weight, rstd)
        return (x * rstd).mul_(weight)      # in place: no autograd inside a Function

    @staticmethod
    def backward(ctx, grad):
        # y = x̂ w, x̂ = x rstd: dw = Σ_rows grad x̂; dx = rstd (grad w - x̂ mean(grad w x̂))
        x, weight, rstd = ctx.saved_tensors
        grad_x = grad * x                                                  # (N, C)
        mean_gwx = (grad_x @ weight)[:, None] * rstd / x.size(-1)          # (N, 1), / rstd
        dx = (grad * weight).mul_(rstd).sub_(x * (rstd * rstd * mean_gwx))  # x̂ rstd = x rstd²
        return dx, grad_x.t() @ rstd[:, 0], None


def rope_tables(head_dim, n_pos, base, device=None):
    """cos/sin tables for rotary embeddings of positions 0 .. n_pos-1, (n_pos, head_dim/2) each,
    fp32. Channel pair i turns by angle pos * base^(-2i/head_dim) (RoFormer, LLaMA)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, device=device).float() / head_dim)  # (D/2,)
    angles = torch.arange(n_pos, device=device).float()[:, None] * inv_freq         # (n_pos, D/2)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """Rotate channel pairs (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos), pair i being channels i
    and i + D/2 (LLaMA/HF "rotate_half": the HF export relies on it). x (..., D); cos, sin
    broadcast: (T, 1, D/2) for x (B, T, H, D). In x's dtype, as in HF (bf16 under autocast)."""
    cos = torch.cat((cos, cos), dim=-1).to(x.dtype)                  # (..., D): small tables
    sin = torch.cat((-sin, sin), dim=-1).to(x.dtype)
    return (x * cos).addcmul_(x.roll(x.size(-1) // 2, dims=-1), sin)   # roll: (x1, x2) -> (x2, x1)


class Attention(nn.Module):
    """Causal self-attention with RoPE and grouped-query heads (n_kv_head <= n_head)."""
    def __init__(self, config):
        super().__init__()
        self.config = config
        C, D, Hkv = config.n_embd, config.head_dim, config.kv_heads
        self.q_proj = nn.Linear(C, config.n_head * D, bias=False)
        self.k_proj, self.v_proj = nn.Linear(C, Hkv * D, bias=False), nn.Linear(C, Hkv * D, bias=False)
        self.o_proj = nn.Linear(config.n_head * D, C, bias=False)

    def forward(self, x, cos, sin, cache=None):
        B, T, C = x.shape
        H, Hkv, D = self.config.n_head, self.config.kv_heads, self.config.head_dim
        # RoPE in the (B, T, H, D) layout the projections give (contiguous: faster), then transpose
        cos, sin = cos[:, None], sin[:, None]                            # (T, 1, D/2)
        q = apply_rope(self.q_proj(x).view(B, T, H, D), cos, sin).transpose(1, 2)     # (B, H, T, D)
        k = apply_rope(self.k_proj(x).view(B, T, Hkv, D), cos, sin).transpose(1, 2)   # (B,Hkv,T,D)
        v = self.v_proj(x).view(B, T, Hkv, D).transpose(1, 2)
        k, v = (k, v) if cache is None else cache.update(k, v)  # generation: add to the KV cache
        if cache is None and use_kernel(self.config, "attention", q, k, v):
            y = importlib.import_module("kernels.attention").flash_attention(q, k, v)
        else:
            # With a cache, the T new queries sit at the END of the S cached keys: query i may see
            # keys 0 .. S-T+i. SDPA's is_causal aligns to the top-left, so build the mask then.
            S = k.size(2)
            mask = None if cache is None or T == 1 else torch.ones(T, S, dtype=torch.bool, device=x.device).tril(S - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=Hkv != H,
                                               is_causal=cache is None and T > 1)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, H * D))  # (B, T, C)


class SwiGLU(nn.Module):
    """FFN(x) = W_down( silu(W_gate x) * W_up x )   (Shazeer 2020; LLaMA)."""
    def __init__(self, config):
        super().__init__()
        C, hidden = config.n_embd, config.ffn_hidden
        self.gate_proj, self.up_proj = nn.Linear(C, hidden, bias=False), nn.Linear(C, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """Pre-norm block (LLaMA): each sub-layer reads a normalised copy of the residual stream and
    adds its output back; the stream itself is never normalised, so gradients flow straight down."""
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.attn_norm, self.attn = RMSNorm(config), Attention(config)      # norm1, attn
        self.ffn_norm, self.ffn = RMSNorm(config), SwiGLU(config)           # norm2, ffn

    def forward(self, x, cos, sin, cache=None):      # x: (B, T, C), the residual stream
        attn_out = self.attn(self.attn_norm(x), cos, sin, cache)
        if use_kernel(self.config, "rmsnorm", x, self.ffn_norm.weight):
            # CUDA: one kernel computes h = x + attn_out and norm2(h) (the two lines below) without
            # writing h and reading it back; a call of norm2 still: hooks on it (inherit.py's) run.
            normed, h = self.ffn_norm(attn_out, residual=x)
            return h + self.ffn(normed)
        h = x + attn_out                             # h   = x + attn(norm1(x))
        return h + self.ffn(self.ffn_norm(h))        # out = h + ffn(norm2(h))


class KVCache:
    """Keys and values of one layer for incremental decoding: (B, Hkv, S, D), filled in place."""
    def __init__(self, B, Hkv, max_len, D, device, dtype):
        self.k = torch.empty(B, Hkv, max_len, D, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.len = 0

    def update(self, k, v):                          # k, v: (B, Hkv, T, D) of T new positions
        start, self.len = self.len, self.len + k.size(2)
        self.k[:, :, start:self.len], self.v[:, :, start:self.len] = k, v
        return self.k[:, :, :self.len], self.v[:, :, :self.len]     # all positions so far


class HeadLoss(torch.autograd.Function):
    """Cross-entropy per row (N,) of logits = h W^T (N, V) against targets (N,), with d loss /
    d logits = softmax - onehot written out. F.cross_entropy(lm_head(h)) makes four (N, V) fp32
    tensors (logits, log-softmax, a zeroed gradient, the logits' gradient); here one buffer holds
    them in turn. 4096 x 16,384 (268 MB), fp32, 1 thread: fwd + bwd with matmuls 4.2 -> 3.4 s."""
    @staticmethod
    def forward(ctx, h, weight, targets):                         # h (N, C), weight (V, C)
        logits = h @ weight.t()                                    # (N, V): bf16 under autocast
        logprobs, ctx.matmul_dtype = logits.float(), logits.dtype  # the softmax in fp32
        torch.log_softmax(logprobs, dim=-1, out=logprobs)          # in place (row by row)
        ctx.save_for_backward(h, weight, targets, logprobs)
        return -logprobs.gather(1, targets[:, None])[:, 0]

    @staticmethod
    def backward(ctx, grad_loss):                                 # grad_loss (N,)
        h, weight, targets, logprobs = ctx.saved_tensors          # (a 2nd backward fails: changed)
        grad = logprobs.exp_()                                     # softmax, in the saved buffer
        grad[torch.arange(len(targets), device=grad.device), targets] -= 1
        grad = grad.mul_(grad_loss[:, None]).to(ctx.matmul_dtype)  # (N, V) = d loss / d logits
        return grad @ weight.to(grad.dtype), grad.t() @ h.to(grad.dtype), None


class Transformer(nn.Module):
    act_ckpt = False     # recompute each block in backward (train.py --act_ckpt): less memory

    def __init__(self, config):
        super().__init__()
        self.config = config.validate()
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        # RoPE's tables, made once; not in checkpoints (persistent=False): they follow from config.
        cos, sin = rope_tables(config.head_dim, config.block_size, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)      # (block_size, D/2)
        self.register_buffer("rope_sin", sin, persistent=False)

    def _init_weights(self, module):
        # GPT-2 / nanoGPT: every matrix N(0, 0.02), but o_proj and down_proj, which write into the
        # residual stream, get 0.02/sqrt(2L): 2L branches of variance 0.02²/(2L) keep it O(1).
        if isinstance(module, (nn.Linear, nn.Embedding)):
            into_stream = any(module in (blk.attn.o_proj, blk.ffn.down_proj) for blk in self.layers)
            std = 0.02 / math.sqrt(2 * self.config.n_layer) if into_stream else 0.02
            nn.init.normal_(module.weight, mean=0.0, std=std)

    def trunk(self, idx, caches=None):
        """The final normed hidden states (B, T, C) of token ids idx (B, T): all but the LM head.
        With `caches` (one KVCache per layer), positions continue after what is cached."""
        c, start = self.config, caches[0].len if caches is not None else 0
        end = start + idx.size(1)
        if end > len(self.rope_cos):              # past block_size (e.g. eval of long text): grow
            self.rope_cos, self.rope_sin = rope_tables(c.head_dim, 2 * end, c.rope_base, idx.device)
        cos, sin = self.rope_cos[start:end], self.rope_sin[start:end]    # (T, D/2)
        x = self.tok_emb(idx)                                            # (B, T, C)
        for i, layer in enumerate(self.layers):
            if self.act_ckpt and self.training and torch.is_grad_enabled():
                x = recompute_in_backward(layer, x, cos, sin, use_reentrant=False)   # keeps x only
            else:
                x = layer(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x)

    def forward(self, idx, targets=None, caches=None, reduction="mean"):
        """(logits, loss) for token ids idx (B, T). Without targets: (fp32 logits (B, T, V), None),
        to generate and evaluate. With targets (B, T): (None, cross-entropy), never making the logits
        whole (head_loss): `_, loss = model(x, y)`. reduction: "mean" over tokens, "sum", "none"."""
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction={reduction!r}; use 'mean', 'sum' or 'none'")
        h = self.trunk(idx, caches)                                      # (B, T, C)
        if targets is None:
            return self.lm_head(h).float(), None                         # fp32 for the softmax
        losses = self.head_loss(h.flatten(0, 1), targets.flatten())      # (B*T,)
        return None, losses.view_as(targets) if reduction == "none" else getattr(losses, reduction)()

    def head_loss(self, h, targets):
        """Per-row cross-entropy (N,) of hidden rows h (N, C) against targets (N,), LOSS_CHUNK_ROWS
        rows at a time. Why: at 1B (V = 48,064) 8 x 2048 rows have 3.1 GB of fp32 logits, kept for
        backward (~25 GB at batch 64). A chunk keeps its inputs only (a view of h); backward
        recomputes its logits (~3% more at 1B)."""
        n, weight = LOSS_CHUNK_ROWS, self.lm_head.weight
        if len(h) <= n:                          # one chunk (every CPU batch): nothing to recompute
            return HeadLoss.apply(h, weight, targets)
        return torch.cat([recompute_in_backward(HeadLoss.apply, h[i:i + n], weight, targets[i:i + n],
                                                use_reentrant=False) for i in range(0, len(h), n)])

    # ---- Accounting: the parameter split the compact tokenizer is about, FLOPs, memory --------
    def param_count(self):
        """Parameters split as in the paper's argument (paper, Compact Tokenizer; PAPER.md §1)."""
        emb = self.tok_emb.weight.numel()
        head = 0 if self.config.tie_embeddings else self.lm_head.weight.numel()
        total = sum(p.numel() for p in self.parameters())
        return {"embedding": emb, "lm_head": head, "rest": total - emb - head, "total": total}

    def activation_bytes(self, tokens, act_ckpt=False, elem=2):
        """Bytes autograd keeps for backward over `tokens` tokens (elem: 2 in bf16 autocast, 4 in
        fp32), for train.py --dry_run. Per token and block: 9C (the norms' inputs and outputs, q
        before and after RoPE, attention's output, o_proj's input) + 2·Hkv·D (k, v) + H (log-sum-
        exp) + 4F (SwiGLU's gate, up, silu(gate), product) + 2 (the norms' 1/rms); ~12% less on a
        CPU (RMSNormCPU). Head: final norm (3C), a chunk of fp32 logits. act_ckpt: block inputs."""
        c = self.config
        block = 9 * c.n_embd + 2 * c.kv_heads * c.head_dim + c.n_head + 4 * c.ffn_hidden + 2
        head = tokens * 3 * c.n_embd * elem + min(tokens, LOSS_CHUNK_ROWS) * c.vocab_size * 4
        kept = c.n_layer * c.n_embd * 4 + block * elem if act_ckpt else c.n_layer * block * elem
        return tokens * kept + head

    def flops_per_token(self, seq_len=None):
        """Training FLOPs per token (forward + backward = 3 x forward): 6 x the matrix parameters
        (not the embedding lookup) + attention's QK^T and AV (2·2·T·C forward, causal: 6·L·T·C)"""
        c, T, n = self.config, seq_len or self.config.block_size, self.param_count()
        return 6 * (n["rest"] + self.lm_head.weight.numel() + c.n_layer * T * c.n_embd)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True, generator=None, n_vocab=None):
        """Sample continuations of idx (B, T); temperature 0 = greedy. use_cache: encode the prompt
        once, then one position per new token (KV cache); without, recompute the whole sequence each
        step: the same tokens (tests check it). n_vocab: never sample padding rows beyond it."""
        c, B, T = self.config, idx.size(0), idx.size(1)
        if T + max_new_tokens > c.block_size:
            raise ValueError(f"prompt ({T} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
                             f"model's context of {c.block_size}; shorten one of them")
        caches = [KVCache(B, c.kv_heads, T + max_new_tokens, c.head_dim, idx.device, self.tok_emb.weight.dtype)
                  for _ in self.layers] if use_cache else None
        out = nxt = idx
        for _ in range(max_new_tokens):
            logits = self(nxt if use_cache else out, caches=caches)[0][:, -1, :]   # (B, V)
            if n_vocab is not None:
                logits[:, n_vocab:] = float("-inf")
            if temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            out = torch.cat((out, nxt), dim=1)
        return out


# ---- Checkpoint FILES (not activation checkpointing): dicts {model, model_config, tokenizer, ...}
def save_checkpoint(obj, path):
    """Write atomically and durably (temp file fsynced, renamed over `path`, directory fsynced): no
    kill or power cut leaves a half-written or vanished file. Plain data only (read weights-only)"""
    with open(tmp := path + ".tmp", "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def fsync_dir(path):
    """Make a rename inside `path` durable (POSIX: an entry lives in the directory's own data)."""
    if hasattr(os, "O_DIRECTORY"):                 # not on Windows, where renames need no dir fsync
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_checkpoint(path, device="cpu", trust=False):
    """A checkpoint dict, read with torch.load(weights_only=True): tensors and plain data only, so a
    stranger's file cannot run code as it loads (a full unpickle can: any __reduce__ is a call).
    trust=True (--trust_checkpoint) unpickles all of an older checkpoint you trust, and says so."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path} not found; train one with train.py or check it")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a checkpoint file; name the .pt file in it")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=not trust)
    except pickle.UnpicklingError:
        raise ValueError(f"{path} holds Python objects beyond tensors and plain data (an older checkpoint, or a "
                         f"file that would run code); if you trust its source, add --trust_checkpoint") from None
    except Exception as e:
        raise ValueError(f"{path} is not a readable checkpoint ({type(e).__name__}); was it "
                         f"written by train.py or inherit.py?") from None
    if trust:
        print(f"trusting {path}: loaded with weights_only=False (a full unpickle, which can run code)")
        rng = ckpt.get("rng") if isinstance(ckpt, dict) else None   # today's form of an older numpy
        if isinstance(rng, dict) and isinstance(rng.get("numpy"), tuple):   # RNG state: a list
            name, keys, pos, has_gauss, gauss = rng["numpy"]
            rng["numpy"] = [name, keys.tolist(), pos, has_gauss, gauss]
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise ValueError(f"{path} is not a nanopangu checkpoint (no model / model_config)")
    return ckpt


def load_model(path, device="cpu", trust=False):
    """(Transformer with the checkpoint's weights, in eval mode; the checkpoint dict)."""
    ckpt = load_checkpoint(path, device, trust)
    model = Transformer(ModelConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt

# Peak FLOP/s for MFU: datasheet dense bf16 figures. A peak measured at start-up depends on the load
# of the moment (a shared CPU showed "mfu=212.9%"): CPUs and unknown GPUs get None, tokens/s only.
GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12,
                 "A10": 125e12, "RTX 4090": 165e12, "RTX 3090": 71e12}


def device_peak_flops(device):
    """Datasheet peak FLOP/s of a known GPU, else None."""
    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "a CPU"
    return next((flops for key, flops in GPU_PEAK_BF16.items() if key in name), None)

if __name__ == "__main__":     # python model.py: each preset's shape and size (CPU ones: 16k ids)
    for name, cfg in PRESETS.items():
        cfg = model_config(name, vocab_size=padded_vocab(PRESET_N_VOCAB.get(name, 16_001)))
        with torch.device("meta"):                   # shapes only, no memory
            n = Transformer(cfg).param_count()
        print(f"{name:<15} {cfg.n_layer:2} x {cfg.n_embd:4}, {cfg.n_head:2} heads, FFN "
              f"{cfg.ffn_hidden:4}, vocab {cfg.vocab_size:6}: {n['total'] / 1e6:6.1f}M parameters, "
              f"{(n['embedding'] + n['lm_head']) / n['total']:.0%} in embedding + head")
