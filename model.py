"""
model.py — the nanopangu decoder-only Transformer (LLaMA-style, as in PanGu-π Pro).

One file, plain PyTorch: pre-norm RMSNorm, rotary position embeddings (RoPE), SwiGLU feed-forward,
causal (grouped-query) self-attention, no biases, untied or tied embeddings. On CUDA tensors the
Triton kernels in kernels/ replace RMSNorm and attention (one switch: `_use_kernels` below); on CPU
plain PyTorch runs and triton is never imported.

The paper's *architecture tweak* (PanGu-π Pro, paper §4 "architecture"; ../shared/PAPER.md §2) lives in
PRESETS: at a fixed budget of about 1B parameters, depth matters most, and a 20-layer model with an FFN
expansion near 8/3 balances quality and speed. The *compact tokenizer* (paper §3.1) shows up here only
as `vocab_size`; `param_count()` reports the embedding / LM-head / rest split that motivates it.
"""
import math
import os
import pickle
from dataclasses import dataclass, asdict, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


@dataclass
class ModelConfig:
    vocab_size: int = 0           # rows of the embedding / LM head; 0 = take it from the data (train.py)
    n_layer: int = 6
    n_embd: int = 256             # hidden size C
    n_head: int = 4               # query heads; head size = n_embd // n_head
    n_kv_head: int = 0            # key/value heads for grouped-query attention; 0 = n_head (plain MHA)
    ffn_ratio: float = 8 / 3      # SwiGLU hidden = ffn_ratio * n_embd, rounded UP to ffn_multiple
    ffn_multiple: int = 64
    block_size: int = 256         # context length the model is trained for (RoPE has no hard limit,
    rope_base: float = 10000.0    #   but train.py refuses to go past it)
    norm_eps: float = 1e-5
    tie_embeddings: bool = False  # PanGu-π Pro unties them (official LLM1B config)
    use_kernels: bool = True      # Triton kernels for CUDA tensors (kernels/); PyTorch elsewhere

    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    @property
    def kv_heads(self):
        return self.n_kv_head or self.n_head

    @property
    def ffn_hidden(self):
        # e.g. pangu-1b-pro: 1792 * 8/3 = 4778.7 -> next multiple of 256 = 4864 (official config)
        return self.ffn_multiple * math.ceil(self.ffn_ratio * self.n_embd / self.ffn_multiple)

    def validate(self):
        """One-line errors for shapes that cannot work, before any tensor is allocated."""
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; pick heads that divide the hidden size")
        if self.head_dim % 2:
            raise ValueError(f"head size {self.head_dim} is odd; RoPE rotates pairs of channels, so n_embd/n_head must be even")
        if self.n_head % self.kv_heads:
            raise ValueError(f"n_kv_head={self.n_kv_head} must divide n_head={self.n_head} (grouped-query attention)")
        if self.vocab_size <= 0:
            raise ValueError("vocab_size is not set: train.py takes it from the data's meta.json, or pass --vocab_size=N")
        for name in ("n_layer", "n_embd", "n_head", "block_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        return self


# ------------------------------------------------------------------------------------------------
# Presets: one readable table. Parameter counts are printed by `python model.py`.
# Vocabulary convention: every preset takes its vocabulary from the data (vocab_size=0): train.py sets
# vocab_size = the tokenizer's ids (meta.json) padded up to a multiple of 64. The paper's "48k" is the count
# of ORDINARY tokens: `tokenizer_compress.py --vocab=48000` keeps 48,000 of them plus <|endoftext|> = 48,001
# ids, so the model has 48,064 rows (64 never-used padding rows; eval and sampling mask them).
#   pangu-1b-pro   — official release, configs/LLM1B.py [code]: 20 layers, hidden 1792, 14 heads of 128,
#                    FFN 8/3 rounded up to a multiple of 256 (= 4864), vocab 48k, context 2048, untied,
#                    RMSNorm eps 1e-5. ~0.95B parameters, embedding + head ~18%.
#   pangu-1.5b-pro — hidden 2048, 22 layers, vocab 48k [paper / code figure]. Heads and FFN size are
#                    NOT published: 16 heads of 128 and FFN 7168 (ratio 3.5) are OUR ASSUMPTION, chosen
#                    so the total is ~1.5B.
#   baseline-1b    — like the paper's starting point PanGu-π-1B: 12 layers, hidden 2048, the full ~100k
#                    vocabulary (the paper's tokenizer has 100,883 tokens; ours is cl100k_base, 100,277
#                    ids, padded to 100,288). Heads/FFN are our assumption (16×128, 8/3 -> 5632). ~1.0B,
#                    ~40% in embedding + head: the waste the compact tokenizer removes.
#   tiny / small   — CPU presets: `tiny` learns visibly in minutes on 2 cores; `small` is a bigger
#                    model of the same family to inherit from.
# ------------------------------------------------------------------------------------------------
PRESETS = {
    #                             layers     hidden       heads      kv heads      FFN ratio / multiple          context
    "tiny":           ModelConfig(n_layer=8,  n_embd=256,  n_head=4,  n_kv_head=0, ffn_ratio=8/3, ffn_multiple=64,  block_size=256),
    "small":          ModelConfig(n_layer=12, n_embd=512,  n_head=8,  n_kv_head=0, ffn_ratio=8/3, ffn_multiple=64,  block_size=512),
    "pangu-1b-pro":   ModelConfig(n_layer=20, n_embd=1792, n_head=14, n_kv_head=0, ffn_ratio=8/3, ffn_multiple=256, block_size=2048),
    "pangu-1.5b-pro": ModelConfig(n_layer=22, n_embd=2048, n_head=16, n_kv_head=0, ffn_ratio=3.5, ffn_multiple=256, block_size=2048),
    "baseline-1b":    ModelConfig(n_layer=12, n_embd=2048, n_head=16, n_kv_head=0, ffn_ratio=8/3, ffn_multiple=256, block_size=2048),
}
# Tokenizer ids each preset is meant for (the paper's vocabularies, as our tokenizers count them): what
# `python model.py` and planning use when no data is at hand. 0 = whatever the data has.
PRESET_N_VOCAB = {"pangu-1b-pro": 48_001, "pangu-1.5b-pro": 48_001, "baseline-1b": 100_277}


LOSS_CHUNK_ROWS = 8192   # rows of logits alive at once when computing the loss (Transformer.head_loss)
VOCAB_MULTIPLE = 64   # embedding rows are padded to a multiple of this (faster matmuls); extra rows are unused


def padded_vocab(n_vocab):
    return VOCAB_MULTIPLE * math.ceil(n_vocab / VOCAB_MULTIPLE)


def model_config(preset="tiny", **overrides):
    """A preset with some fields replaced, e.g. model_config("tiny", n_layer=4, vocab_size=16_000)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    names = {f.name for f in fields(ModelConfig)}
    bad = set(overrides) - names
    if bad:
        raise ValueError(f"unknown model option(s) {sorted(bad)}; ModelConfig has {sorted(names)}")
    return ModelConfig(**{**asdict(PRESETS[preset]), **overrides})


# ------------------------------------------------------------------------------------------------
# The one switch between Triton kernels and plain PyTorch.
# ------------------------------------------------------------------------------------------------
_said = set()   # kernels whose path (Triton or PyTorch) this process has already announced
_on_cuda = lambda x: x.is_cuda    # a function so that tests can run the kernel path in Triton's CPU interpreter


def _use_kernels(config, kernel, *inputs):
    """Whether the Triton kernel `kernel` ("rmsnorm" or "attention") runs on these inputs: CUDA tensors, the
    config allows it, and the kernel supports their shapes and dtypes (its own `unsupported()` says; e.g.
    flash attention takes head sizes 16/32/64/128 only, so n_embd=384, n_head=4 falls back to PyTorch).
    Imported lazily, so the CPU path (and macOS/Windows, which cannot install triton) never touches triton.
    The chosen path is printed once per kernel and process."""
    if not (config.use_kernels and _on_cuda(inputs[0])):
        return False
    import importlib
    why_not = importlib.import_module(f"kernels.{kernel}").unsupported(*inputs)
    if kernel not in _said and int(os.environ.get("RANK", 0)) == 0:
        _said.add(kernel)
        print(f"model.py: {kernel}: " + (f"PyTorch fallback ({why_not})" if why_not else "Triton kernel"))
    return why_not is None


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x²) + eps) * weight   (no mean subtraction, no bias).
    With `residual`, returns (norm(x + residual), x + residual): the fused add that pre-norm blocks need."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.weight = nn.Parameter(torch.ones(config.n_embd))

    def forward(self, x, residual=None):
        if residual is not None and x.dtype != residual.dtype:
            x = x.to(residual.dtype)      # under autocast a branch output is bf16, the residual stream fp32
        if _use_kernels(self.config, "rmsnorm", x, self.weight, residual):
            from kernels.rmsnorm import rms_norm
            return rms_norm(x, self.weight, self.config.norm_eps, residual)
        if residual is not None:
            x = x + residual
            return F.rms_norm(x, (x.size(-1),), self.weight, self.config.norm_eps), x
        return F.rms_norm(x, (x.size(-1),), self.weight, self.config.norm_eps)


def rope_tables(head_dim, n_pos, base, device=None):
    """cos/sin tables for rotary embeddings of positions 0 .. n_pos-1, (n_pos, head_dim/2) each, fp32.
    Channel pair i rotates by angle pos * base^(-2i/head_dim) (RoFormer, LLaMA)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    angles = torch.arange(n_pos, dtype=torch.float32, device=device)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """Rotate channel pairs (x1, x2) -> (x1 cos - x2 sin, x1 sin + x2 cos). x: (B, H, T, D); cos, sin:
    (T, D/2). Pairs are channels i and i + D/2, the two halves of the head (LLaMA/HF "rotate_half" layout,
    which the HF export relies on). The math runs in x's dtype, as in HF (bf16 under autocast)."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)                          # no-ops in fp32
    x1, x2 = x.chunk(2, dim=-1)                                          # (B, H, T, D/2) each
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    """Causal self-attention with RoPE and grouped-query heads (n_kv_head <= n_head)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        C, D = config.n_embd, config.head_dim
        self.q_proj = nn.Linear(C, config.n_head * D, bias=False)
        self.k_proj = nn.Linear(C, config.kv_heads * D, bias=False)
        self.v_proj = nn.Linear(C, config.kv_heads * D, bias=False)
        self.o_proj = nn.Linear(config.n_head * D, C, bias=False)

    def forward(self, x, cos, sin, cache=None):
        B, T, C = x.shape
        H, Hkv, D = self.config.n_head, self.config.kv_heads, self.config.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)              # (B, H, T, D)
        k = self.k_proj(x).view(B, T, Hkv, D).transpose(1, 2)            # (B, Hkv, T, D)
        v = self.v_proj(x).view(B, T, Hkv, D).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:                       # generation: append to this layer's KV cache
            k, v = cache.update(k, v)
        if cache is None and _use_kernels(self.config, "attention", q, k, v):
            from kernels.attention import flash_attention
            y = flash_attention(q, k, v)
        else:
            # With a cache, the T new queries sit at the END of the S cached keys: query i may see keys
            # 0 .. S-T+i. SDPA's is_causal aligns to the top-left, so build the mask explicitly then.
            S = k.size(2)
            mask = None
            if cache is not None and T > 1:
                mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               is_causal=cache is None and T > 1,
                                               enable_gqa=Hkv != H)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, H * D))


class SwiGLU(nn.Module):
    """FFN(x) = W_down( silu(W_gate x) * W_up x )   (Shazeer 2020; LLaMA)."""

    def __init__(self, config):
        super().__init__()
        C, F_ = config.n_embd, config.ffn_hidden
        self.gate_proj = nn.Linear(C, F_, bias=False)
        self.up_proj = nn.Linear(C, F_, bias=False)
        self.down_proj = nn.Linear(F_, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """Pre-norm block. Written with the fused add+norm: h = x + attn(norm1(x)); out = h + ffn(norm2(h))."""

    def __init__(self, config):
        super().__init__()
        self.attn_norm = RMSNorm(config)
        self.attn = Attention(config)
        self.ffn_norm = RMSNorm(config)
        self.ffn = SwiGLU(config)

    def forward(self, x, cos, sin, cache=None):
        a = self.attn(self.attn_norm(x), cos, sin, cache)
        n, h = self.ffn_norm(a, residual=x)              # n = norm(x + a), h = x + a
        return h + self.ffn(n)


class KVCache:
    """Keys and values of one layer for incremental decoding: (B, Hkv, S, D), grown in place."""

    def __init__(self, B, Hkv, max_len, D, device, dtype):
        self.k = torch.empty(B, Hkv, max_len, D, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.len = 0

    def update(self, k, v):
        T = k.size(2)
        self.k[:, :, self.len:self.len + T] = k
        self.v[:, :, self.len:self.len + T] = v
        self.len += T
        return self.k[:, :, :self.len], self.v[:, :, :self.len]


class Transformer(nn.Module):
    act_ckpt = False     # activation checkpointing per block (train.py --act_ckpt): less memory, one more forward

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
        # RoPE's cos/sin tables, computed once (not every forward); grown by trunk() past block_size.
        # Not saved in checkpoints (persistent=False): they follow from the config.
        cos, sin = rope_tables(config.head_dim, config.block_size, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)          # (block_size, D/2)
        self.register_buffer("rope_sin", sin, persistent=False)

    def _init_weights(self, module):
        # Initialisation (GPT-2 / nanoGPT style): every matrix N(0, 0.02). The two projections that
        # write into the residual stream (attention o_proj, FFN down_proj) are scaled by 1/sqrt(2·L):
        # each of the 2L residual branches then adds variance ~0.02²/(2L), so the residual stream's
        # variance stays O(1) at any depth instead of growing linearly with the number of layers.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = 0.02
            if any(module is blk.attn.o_proj or module is blk.ffn.down_proj for blk in self.layers):
                std = 0.02 / math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)

    def trunk(self, idx, caches=None):
        """The final normed hidden states (B, T, C) of token ids idx (B, T): everything but the LM head.
        (eval.py applies the V x C head only where it needs log-probs.) With `caches` (one KVCache per
        layer), positions continue after what is cached."""
        start = caches[0].len if caches is not None else 0
        end = start + idx.size(1)
        if end > len(self.rope_cos):              # longer than block_size (e.g. eval of long text): grow
            self.rope_cos, self.rope_sin = rope_tables(self.config.head_dim, 2 * end, self.config.rope_base, idx.device)
        cos, sin = self.rope_cos[start:end], self.rope_sin[start:end]    # (T, D/2)
        x = self.tok_emb(idx)                                            # (B, T, C)
        for i, layer in enumerate(self.layers):
            if self.act_ckpt and self.training and torch.is_grad_enabled():
                # keep only the block's input; its inner activations are recomputed in backward
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, use_reentrant=False)
            else:
                x = layer(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x)

    def forward(self, idx, targets=None, caches=None, reduction="mean"):
        """idx: (B, T) token ids. Without targets: (logits (B, T, V) in fp32, None). With targets (B, T):
        (None, cross-entropy loss), the mean over tokens, their sum, or per token (B, T) with "none".
        The loss is computed without ever holding the (B, T, V) logits: see head_loss()."""
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction={reduction!r}; use 'mean', 'sum' or 'none'")
        h = self.trunk(idx, caches)                                      # (B, T, C)
        if targets is None:
            return self.lm_head(h).float(), None                         # fp32 for the softmax
        losses = self.head_loss(h.flatten(0, 1), targets.flatten())      # (B*T,)
        if reduction == "none":
            return None, losses.view_as(targets)
        return None, losses.sum() if reduction == "sum" else losses.mean()

    def head_loss(self, h, targets):
        """Per-row cross-entropy (N,) of hidden rows h (N, C) against targets (N,), the LM head applied in
        chunks of LOSS_CHUNK_ROWS rows. Why: at 1B (V = 48,064) one micro-batch of 8 x 2048 = 16,384 rows
        has fp32 logits of 16,384 x 48,064 x 4 B = 3.1 GB; cross-entropy keeps its log-softmax (another
        3.1 GB) for backward, and backward adds the logits' gradient: ~9 GB at batch 8, ~75 GB at 64.
        Each chunk runs under activation checkpointing: its forward keeps only its inputs (a view of h),
        and backward recomputes the chunk's logits (one extra head matmul, ~3% of a 1B step) and frees
        them before the next chunk. At 8,192 rows one chunk's fp32 logits are 1.6 GB, whatever the batch."""
        n = LOSS_CHUNK_ROWS
        if len(h) <= n:                          # one chunk: nothing to save by recomputing
            return self._rows_loss(h, targets)
        return torch.cat([checkpoint(self._rows_loss, h[i:i + n], targets[i:i + n], use_reentrant=False)
                          for i in range(0, len(h), n)])

    def _rows_loss(self, h, targets):
        return F.cross_entropy(self.lm_head(h).float(), targets, reduction="none")   # fp32 softmax

    # --------------------------------------------------------------------------------------------
    # Accounting: the parameter split the compact tokenizer is about, FLOPs, MFU.
    # --------------------------------------------------------------------------------------------
    def param_count(self):
        """Parameters split as in the paper's argument: embedding, LM head, everything else."""
        emb = self.tok_emb.weight.numel()
        head = 0 if self.config.tie_embeddings else self.lm_head.weight.numel()
        total = sum(p.numel() for p in self.parameters())
        return {"embedding": emb, "lm_head": head, "rest": total - emb - head, "total": total}

    def activation_bytes(self, tokens, act_ckpt=False, elem=2):
        """Bytes autograd keeps for backward over a micro-batch of `tokens` tokens (elem: 2 under bf16
        autocast, 4 in fp32): what train.py --dry_run plans with (tests/test_train.py measures it). Per token
        and block, counted from the tensors this file saves: 9C (both norms' inputs and outputs, q before and
        after RoPE, the attention output and o_proj's input) + 2·Hkv·D (k and v) + H (attention's log-sum-exp)
        + 4F (SwiGLU's gate, up, silu(gate) and their product) + 2 (the norms' 1/rms); flash attention keeps
        no T x T matrix. The head: the final norm (3C) and one chunk of fp32 logits (never the whole
        (tokens, V), see head_loss). With act_ckpt a block keeps only its input (C, fp32 residual stream),
        plus one block's activations while that block is recomputed."""
        c = self.config
        block = 9 * c.n_embd + 2 * c.kv_heads * c.head_dim + c.n_head + 4 * c.ffn_hidden + 2
        head = tokens * 3 * c.n_embd * elem + min(tokens, LOSS_CHUNK_ROWS) * c.vocab_size * 4
        if act_ckpt:
            return tokens * (c.n_layer * c.n_embd * 4 + block * elem) + head
        return tokens * c.n_layer * block * elem + head

    def flops_per_token(self, seq_len=None):
        """Training FLOPs per token (forward + backward = 3 × forward): 6 × (matrix parameters) for the
        matmuls (the embedding lookup is not a matmul) plus attention's QK^T and AV, which cost
        2 × 2 × T × C per token forward with a full mask — we count the causal half: 6 · L · T · C."""
        c, T = self.config, seq_len or self.config.block_size
        n = self.param_count()
        matmul_params = n["total"] - n["embedding"] + (n["embedding"] if c.tie_embeddings else 0)
        return 6 * matmul_params + 6 * c.n_layer * T * c.n_head * c.head_dim

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True, generator=None, n_vocab=None):
        """Sample continuations of idx (B, T). temperature 0 = greedy. With use_cache the prompt is
        encoded once and each new token costs one position (KV cache); without it the whole sequence is
        recomputed each step — both give the same tokens (tests check it). n_vocab: the tokenizer's size;
        the padding rows beyond it (vocab_size is rounded up) are never sampled."""
        c = self.config
        if idx.size(1) + max_new_tokens > c.block_size:
            raise ValueError(f"prompt ({idx.size(1)} tokens) + max_new_tokens ({max_new_tokens}) exceeds "
                             f"the model's context of {c.block_size}; shorten one of them")
        caches = None
        if use_cache:
            dtype = self.tok_emb.weight.dtype
            caches = [KVCache(idx.size(0), c.kv_heads, idx.size(1) + max_new_tokens, c.head_dim, idx.device, dtype)
                      for _ in range(c.n_layer)]
        out, step_input = idx, idx
        for _ in range(max_new_tokens):
            logits, _ = self(step_input if use_cache else out, caches=caches)
            logits = logits[:, -1, :]                                    # (B, V)
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
            step_input = nxt
        return out


# ------------------------------------------------------------------------------------------------
# Checkpoints: a dict {model, model_config, tokenizer, ...} written by train.py / inherit.py. Written atomically
# (temp file + rename), so "ckpt.pt" is never half-written; loaded into a Transformer for eval, inherit, export.
# ------------------------------------------------------------------------------------------------
def save_checkpoint(obj, path):
    """Write atomically and durably: a temp file, fsynced, renamed over `path`, then the directory fsynced, so
    neither a kill nor a power cut leaves a half-written or vanished checkpoint. Only plain data may be
    saved (tensors, dicts, lists, str, numbers): load_checkpoint reads it with weights_only=True."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def fsync_dir(path):
    """Make a rename inside `path` durable (POSIX: the directory entry lives in the directory's own data)."""
    if hasattr(os, "O_DIRECTORY"):                       # not on Windows, where renames need no dir fsync
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_checkpoint(path, device="cpu", trust=False):
    """A checkpoint dict, read with torch.load(weights_only=True): tensors and plain data only, so a file from
    a stranger cannot run code while it loads (a full unpickle can: any object's __reduce__ is a call).
    trust=True (the scripts' --trust_checkpoint) unpickles everything once, for an older checkpoint of a
    source you trust, and says so."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path} not found; train one with train.py or check the path")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a checkpoint file; name the .pt file inside it")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=not trust)
    except pickle.UnpicklingError:
        raise ValueError(f"{path} holds Python objects beyond tensors and plain data (a checkpoint written before "
                         f"weights-only saving, or a file that would run code); if you trust its source, "
                         f"add --trust_checkpoint") from None
    except Exception as e:
        raise ValueError(f"{path} is not a readable checkpoint ({type(e).__name__}); was it written by train.py "
                         f"or inherit.py?") from None
    if trust:
        print(f"trusting {path}: loaded with weights_only=False (a full unpickle, which can run code)")
        ckpt = plain_checkpoint(ckpt)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise ValueError(f"{path} is not a nanopangu checkpoint (no model / model_config)")
    return ckpt


def plain_checkpoint(ckpt):
    """An older checkpoint in today's plain form: numpy's RNG state tuple (which holds an ndarray) as a list."""
    rng = ckpt.get("rng") if isinstance(ckpt, dict) else None
    if isinstance(rng, dict) and isinstance(rng.get("numpy"), tuple):
        name, keys, pos, has_gauss, gauss = rng["numpy"]
        rng["numpy"] = [name, keys.tolist(), pos, has_gauss, gauss]
    return ckpt


def load_model(path, device="cpu", trust=False):
    """(Transformer with the checkpoint's weights, in eval mode, the checkpoint dict): eval.py, inherit.py, export."""
    ckpt = load_checkpoint(path, device, trust)
    model = Transformer(ModelConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


# ------------------------------------------------------------------------------------------------
# Peak FLOP/s for MFU: datasheet dense bf16 figures. MFU is only shown against one of these: a peak measured
# at start-up depends on the load of the moment (a shared CPU showed "mfu=212.9%"), so CPUs and unknown GPUs
# get None and train.py reports tokens/s only.
# ------------------------------------------------------------------------------------------------
GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12,
                 "A10": 125e12, "RTX 4090": 165e12, "RTX 3090": 71e12}


def device_peak_flops(device):
    """Datasheet peak FLOP/s of a known GPU, else None."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, flops in GPU_PEAK_BF16.items():
            if key in name:
                return flops
    return None


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description="Print every preset's shape and parameter split.")
    p.add_argument("--n_vocab", type=int, default=16_001, help="tokenizer ids for the CPU presets (default: %(default)s)")
    args = p.parse_args()
    print(f"{'preset':<16}{'layers':>7}{'hidden':>7}{'heads':>6}{'ffn':>6}{'vocab':>8}{'total':>10}{'emb+head':>10}{'share':>7}")
    for name, cfg in PRESETS.items():
        cfg = model_config(name, vocab_size=padded_vocab(PRESET_N_VOCAB.get(name, args.n_vocab)))
        with torch.device("meta"):
            n = Transformer(cfg).param_count()
        emb = n["embedding"] + n["lm_head"]
        print(f"{name:<16}{cfg.n_layer:>7}{cfg.n_embd:>7}{cfg.n_head:>6}{cfg.ffn_hidden:>6}{cfg.vocab_size:>8}"
              f"{n['total'] / 1e6:>9.1f}M{emb / 1e6:>9.1f}M{emb / n['total']:>7.1%}")
