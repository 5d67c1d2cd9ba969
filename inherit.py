"""inherit.py — parameter inheritance (paper, Parameter Inheritance; ../shared/PAPER.md §3): start a
tiny model from a larger trained one instead of at random, the paper's largest gain (+3.26 [paper]).

    python inherit.py --src=out/ckpt.pt --out=out_small/init.pt --n_layer=4 --n_embd=128 \
                      --layers=edges --width=taylor --calib=data/shakespeare-compact
    python train.py --init_from=out_small/init.pt ...     # trains it like any checkpoint

The student is a subset of the source along three axes, in order: 1. tokens (--tokenizer: one
compressed from the source's tokenizer keeps its tokens' embedding and LM-head rows; paper, Compact
Tokenizer; PAPER.md §1); 2. layers (--layers: whole blocks); 3. width (--width: attention heads or
kv groups, SwiGLU neurons, and ONE set of hidden channels for every matrix and RMSNorm, so the
residual stream stays aligned). Units keep their order: the source's own shape gives it back."""
import argparse
import copy
import json
import os
import shlex
import sys
from dataclasses import asdict

import numpy as np
import torch

from model import ModelConfig, PRESETS, RMSNorm, Transformer, load_model, padded_vocab, save_checkpoint
from tokenizer_compress import bits_per_byte, load_tokenizer, tokenizer_identity, tokenizer_info

LAYER_STRATEGIES = ("first", "last", "uniform", "edges", "importance")
SHAPE = ("n_layer", "n_embd", "n_head", "n_kv_head", "ffn_ratio")    # what a student may change
CALIB_SLICE = 0.05     # calibration windows: the last 5% of train.bin, a fixed region at any seed
STREAMS = ("score", "masks", "report")      # own windows for scores, mask training, printed losses


class Calib:
    """All choices and printed losses use windows of the end of train.bin (CALIB_SLICE), never
    val.bin: units picked by their val loss would later be evaluated on the text that picked them.
    The source trained on this slice too; fine: calibration asks what the source computes."""
    def __init__(self, folder, tok, seq_len, batch_size, seed):
        if not os.path.exists(meta_path := os.path.join(folder, "meta.json")):
            raise FileNotFoundError(f"{meta_path} not found: is --calib a data/prepare.py folder?")
        with open(meta_path) as f:
            self.meta = json.load(f)
        if self.meta["tokenizer"]["sha256"] != tok["sha256"]:      # ids must mean the same tokens
            raise ValueError(f"{folder} was made with tokenizer {self.meta['tokenizer']['name']!r}"
                             f", the student uses {tok['name']!r}; prepare it with that one")
        train = np.memmap(os.path.join(folder, "train.bin"), dtype=self.meta["dtype"], mode="r")
        self.tokens = train[int(len(train) * (1 - CALIB_SLICE)):]          # a view: nothing is read
        if len(self.tokens) <= seq_len + 1:
            raise ValueError(f"the last {CALIB_SLICE:.0%} of {folder}/train.bin: {len(self.tokens)}"
                             f" tokens, under one window; lower --seq_len or prepare more text")
        self.T, self.B, self.seed = seq_len, batch_size, seed    # B windows of T+1 tokens a batch

    def batches(self, n, stream, desc):          # n batches (x, y); batch i is (seed, stream, i)'s
        from tqdm import tqdm
        for i in tqdm(range(n), desc=desc, leave=False, dynamic_ncols=True):
            rng = np.random.default_rng([self.seed, STREAMS.index(stream), i])
            starts = rng.integers(0, len(self.tokens) - self.T, self.B)           # (B,)
            x = np.stack([self.tokens[s:s + self.T + 1] for s in starts]).astype(np.int64)
            yield torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])         # (B, T) each


@torch.no_grad()
def calib_loss(model, calib, n_batches, stream, desc):      # mean LM loss (nats/token) of a stream
    losses = [model.eval()(x, y) for x, y in calib.batches(n_batches, stream, desc)]
    return sum(loss.item() for _, loss in losses) / n_batches       # (None, loss) pairs


# ==== 1. Tokens: the embedding / LM-head rows of a compressed tokenizer's kept tokens.
def slice_vocab(state, cfg, tok, tokenizer_path):
    """(state dict, config, tokenizer identity) for the compressed tokenizer: row new_id of tok_emb
    and lm_head = the source's row new_to_old[new_id], so the kept tokens' logits are unchanged."""
    info, enc = tokenizer_info(tokenizer_path), load_tokenizer(tokenizer_path)
    if info["source"]["sha256"] != tok["sha256"]:
        raise ValueError(f"{tokenizer_path} was compressed from {info['source']['name']!r}, but "
                         f"the source model uses {tok['name']!r}; compress the source's own")
    if cfg.vocab_size < tok["n_vocab"]:
        raise ValueError(f"the source has {cfg.vocab_size:,} embedding rows, fewer than the "
                         f"{tok['n_vocab']:,} ids of its tokenizer {tok['name']!r}; is it wrong?")
    V, old_pad = padded_vocab(enc.n_vocab), torch.arange(tok["n_vocab"], cfg.vocab_size)
    pad = old_pad[torch.arange(V - enc.n_vocab) % len(old_pad)] if len(old_pad) else None
    for k in ("tok_emb.weight", "lm_head.weight"):       # padding rows: copies of the source's,
        w = state[k]                                      # which training taught to stay unlikely
        rest = w[pad] if pad is not None else w.new_zeros(V - enc.n_vocab, w.size(1))
        state = {**state, k: torch.cat([w[enc.new_to_old], rest])}     # (V, C); the caller's stays
    return state, ModelConfig(**{**asdict(cfg), "vocab_size": V}), tokenizer_identity(enc)


# ==== 2. Layers: which whole blocks the student keeps.
def with_layers(model, layers):             # the source's weights (no copies), running only these
    m = copy.copy(model)
    m._modules = dict(model._modules)              # its own module table: the source stays whole
    m.layers = torch.nn.ModuleList(model.layers[i] for i in layers)
    m.config = ModelConfig(**{**asdict(model.config), "n_layer": len(layers)})
    return m


def choose_layers(strategy, model, n, calib, n_batches):
    """Indices (increasing) of the n kept layers of the source's L. first / last: 0..n-1 / L-n..L-1.
    uniform: the whole depth, BOTH ends included: i*(L-1)/(n-1) rounded half up for i = 0..n-1
    (8 -> 4 keeps 0, 2, 5, 7); the step is >= 1, so none repeats; n = 1 keeps layer 0. edges: the
    first ceil(n/2) and the last floor(n/2) (the paper: the ends matter most, the middle is
    redundant). importance: the n whose removal raises the calibration loss most: the LOSS, as the
    paper measured [reported], not Minitron's proxy 1 - cos(input, output). Or a list: 0,1,5,11."""
    L = len(model.layers)
    half_up = lambda i: (2 * i * (L - 1) + n - 1) // (2 * (n - 1))    # floor(i(L-1)/(n-1) + 1/2)
    fixed = {"first": range(n), "last": range(L - n, L), "edges": [*range((n + 1) // 2),
             *range(L - n // 2, L)], "uniform": map(half_up, range(n)) if n > 1 else [0]}
    if strategy in fixed or (strategy == "importance" and n == L):
        return list(fixed.get(strategy, range(L)))
    if strategy == "importance":
        base = calib_loss(model, calib, n_batches, "score", "layer importance: full model")
        rise = torch.tensor([calib_loss(with_layers(model, [j for j in range(L) if j != i]), calib,
                                        n_batches, "score", f"skip {i}") for i in range(L)]) - base
        print("loss rise when a layer is skipped:", *(f"{i}:{r:+.3f}" for i, r in enumerate(rise)))
        return sorted(rise.topk(n).indices.tolist())
    try:
        layers = sorted(int(s) for s in strategy.split(","))
    except ValueError:
        raise ValueError(f"--layers={strategy!r}: choose {', '.join(LAYER_STRATEGIES)} or a list "
                         f"like 0,1,5,11") from None
    if len(set(layers)) != len(layers) or layers[0] < 0 or layers[-1] >= L or len(layers) != n:
        raise ValueError(f"--layers={strategy}: give {n} different layer indices in 0..{L - 1}")
    return layers


# ==== 3. Width: a score per unit of the depth-pruned source (L' layers); the student keeps the
#   top-k: heads (L', H) query heads, groups (L', Hkv) kv groups, neurons (L', F), channels (C,).
#   One function per metric (paper, Parameter Inheritance; PAPER.md §3, whose averages are quoted).
def unit_sums(per_weight, cfg):
    """Sum a per-weight quantity (a dict like the state dict: |w|, w², w·dL/dw) over each unit's
    weights: all that leaves the model with the unit. A kv group's k and v rows count ONCE, in the
    group's score (they leave only with the whole group); a query head leaves without them (its
    group's other heads read them), so a head's score (it ranks heads INSIDE a group) has none."""
    H, Hkv, D, C = cfg.n_head, cfg.kv_heads, cfg.head_dim, cfg.n_embd
    channels = per_weight["tok_emb.weight"].sum(0) + per_weight["norm.weight"]   # column c, entry c
    if not cfg.tie_embeddings:                      # tied: the embedding's entry already holds it
        channels = channels + per_weight["lm_head.weight"].sum(0)
    heads, groups, neurons = [], [], []                                # one row per kept layer
    for l in range(cfg.n_layer):
        w = lambda name: per_weight[f"layers.{l}.{name}.weight"]
        q, k, v, o = (w(f"attn.{x}_proj") for x in "qkvo")  # (H*D, C), (Hkv*D, C) x 2, (C, H*D)
        gate, up, down = (w(f"ffn.{x}_proj") for x in ("gate", "up", "down"))   # (F, C) x 2, (C, F)
        heads.append(q.view(H, D, C).sum((1, 2)) + o.view(C, H, D).sum((0, 2)))  # q rows, o columns
        kv = (k + v).view(Hkv, D, C).sum((1, 2))                      # (Hkv,): k, v rows of group j
        groups.append(heads[-1].view(Hkv, H // Hkv).sum(1) + kv)    # + its g = H/Hkv heads (MHA: 1)
        neurons.append(gate.sum(1) + up.sum(1) + down.sum(0))        # rows of gate, up; down column
        channels = channels + w("attn_norm") + w("ffn_norm") + o.sum(1) + down.sum(1) \
            + sum(m.sum(0) for m in (q, k, v, gate, up))     # rows of o, down; columns of the rest
    return dict(heads=torch.stack(heads), groups=torch.stack(groups), neurons=torch.stack(neurons), channels=channels)


def random_scores(model, calib, student, args):
    """A random subset of units: the control that shows what an informed metric adds. (Not the
    paper's "random init" row, 42.06 [reported], which trains from scratch: train.py does that.)"""
    cfg, L, g = model.config, len(model.layers), torch.Generator().manual_seed(args.seed)
    return {"heads": torch.rand(L, cfg.n_head, generator=g), "channels": torch.rand(cfg.n_embd,
            generator=g), "neurons": torch.rand(L, cfg.ffn_hidden, generator=g)}


def magnitude_scores(power):
    """--width=l1 / l2: sum |w|^power over a unit's weights (squares rank as the L2 norm does). Li
    et al. 2017, "Pruning Filters for Efficient ConvNets"; the paper: 46.06, 47.00 [reported]."""
    return lambda model, calib, student, args: unit_sums(
        {k: p.detach().abs() ** power for k, p in model.named_parameters()}, model.config)


def taylor_scores(model, calib, student, args):
    """First-order Taylor estimate of the loss change when unit S is removed (Molchanov et al. 2019,
    "Importance Estimation for Neural Network Pruning"; the paper's Taylor row: 47.90 [reported]).
    Removing S moves each of its weights by -w, so to first order dL = -sum_{s in S} w_s dL/dw_s:
    the score is |sum_{s in S} w_s dL/dw_s|, summed over the unit's weights WITH signs, then |.|
    (Molchanov square it: same ranking), not sum |w dL/dw|, blind to parts that cancel out."""
    model.eval().zero_grad(set_to_none=True)
    for x, y in calib.batches(args.calib_batches, "score", "taylor importance"):
        _, loss = model(x, y)                    # L: the mean loss over ALL calibration batches
        (loss / args.calib_batches).backward()   # .grad sums them BEFORE |.|: sign flips cancel
    first_order = {k: p.detach() * p.grad for k, p in model.named_parameters()}   # w dL/dw, signed
    model.zero_grad(set_to_none=True)                   # the source is scored, not changed
    return {kind: s.abs() for kind, s in unit_sums(first_order, model.config).items()}


@torch.no_grad()
def activation_scores(model, calib, student, args):
    """Mean |activation| on calibration tokens, no gradients (Minitron: Muralidharan et al. 2024,
    "Compact Language Models via Pruning and Knowledge Distillation"); kv group: its heads' sum."""
    cfg, L = model.config, len(model.layers)
    acts = {"heads": torch.zeros(L, cfg.n_head), "neurons": torch.zeros(L, cfg.ffn_hidden),
            "channels": torch.zeros(cfg.n_embd)}
    def record(kind, l=None):
        def hook(module, inputs, output=None):     # a pre-hook sees inputs; a forward hook, output
            a = inputs[0] if output is None else output[0] if isinstance(output, tuple) else output
            row = acts[kind] if l is None else acts[kind][l]     # (units,), a view: added in place
            row.add_(a.abs().mean((0, 1)).view(len(row), -1).mean(1))  # heads: (H*D,) -> (H,)
        return hook
    hooks = [m.register_forward_hook(record("channels"))              # a channel: every RMSNorm's
             for m in model.modules() if isinstance(m, RMSNorm)]      # output, summed
    for l, blk in enumerate(model.layers):
        hooks += [blk.attn.o_proj.register_forward_pre_hook(record("heads", l)),   # attention out
                  blk.ffn.down_proj.register_forward_pre_hook(record("neurons", l))]   # silu(g) * u
    for x, _ in calib.batches(args.calib_batches, "score", "activation importance"):
        model.eval()(x)                                      # the logits go unused: hooks record
    for h in hooks:
        h.remove()
    return acts


def learnable_scores(model, calib, student, args):
    """THIS PROJECT'S OWN METHOD: the paper's best criterion is learnable (48.08 [reported]), its
    recipe not published (PAPER.md §3). Ours: score s_u per unit, a top-k mask relaxed by a sigmoid,
        m_u = sigmoid((s_u - theta) / t),   theta = midway between the k-th and (k+1)-th largest s
        (per layer for heads and neurons, global for channels),   t: t0 -> t1 geometrically,
    trained with Adam on the LM loss of the masked, frozen source; the top-k are kept. Sheared-LLaMA
    (Xia et al. 2024; princeton-nlp/LLM-Shearing, llmshearing/models/l0_module.py) instead samples
    hard-concrete gates (Louizos et al. 2018) on layers, heads, FFN and hidden dims, meets the size
    by a Lagrangian l1 (s-t) + l2 (s-t)^2 on the EXPECTED size (learned multipliers) and trains the
    weights alongside. Here exactly k units have m > 1/2 at every step: the size holds by
    construction (200 CPU steps do not settle multipliers); as t -> 0 the masked source becomes the
    student. Not a straight-through hard top-k: a channel off everywhere gets no gradient."""
    cfg, L, g = model.config, len(model.layers), torch.Generator().manual_seed(args.seed)
    size, keep = (dict(heads=c.n_head, neurons=c.ffn_hidden, channels=c.n_embd) for c in (cfg, student))
    scores = {kind: (1e-3 * torch.randn((L, n) if kind != "channels" else (n,), generator=g))
              .requires_grad_() for kind, n in size.items()}      # ~0: no unit preferred at first
    masks = {kind: torch.ones(s.shape) for kind, s in scores.items()}      # m = 1: kept whole
    scale = (keep["channels"] / cfg.n_embd) ** 0.5   # the student's RMSNorm averages k, not C
    mask_channels = lambda mod, i, o: o * masks["channels"]    # where channels enter the residual
    hooks = [model.tok_emb.register_forward_hook(mask_channels)]
    scale_norm = lambda mod, i, o: (o[0] * scale, o[1]) if isinstance(o, tuple) else o * scale
    hooks += [m.register_forward_hook(scale_norm) for m in model.modules() if isinstance(m, RMSNorm)]
    for l, blk in enumerate(model.layers):
        hooks += [blk.attn.o_proj.register_forward_pre_hook(       # (B, T, H*D) * (H*D,)
                      lambda mod, i, l=l: i[0] * masks["heads"][l].repeat_interleave(cfg.head_dim)),
                  blk.ffn.down_proj.register_forward_pre_hook(     # (B, T, F) * (F,)
                      lambda mod, i, l=l: i[0] * masks["neurons"][l]),
                  *(m.register_forward_hook(mask_channels) for m in (blk.attn.o_proj, blk.ffn.down_proj))]
    model.requires_grad_(False).train()         # weights frozen: train.py trains the student next
    steps = args.mask_steps if keep != size else 0       # the source's own width: nothing to learn
    opt = torch.optim.Adam(scores.values(), lr=args.mask_lr)
    for step, (x, y) in enumerate(calib.batches(steps, "masks", "learnable masks")):
        t = args.mask_t0 * (args.mask_t1 / args.mask_t0) ** (step / max(1, steps - 1))
        for kind, s in scores.items():
            if keep[kind] < size[kind]:
                top = s.detach().topk(keep[kind] + 1, dim=-1).values[..., -2:]   # k-th, (k+1)-th
                masks[kind] = torch.sigmoid((s - top.mean(-1, keepdim=s.dim() == 2)) / t)
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()                                 # reaches the scores through the masks
        opt.step()
    for h in hooks:
        h.remove()
    model.requires_grad_(True)                          # the source as it was found
    return {kind: s.detach() for kind, s in scores.items()}


WIDTH_METRICS = {"random": random_scores, "l1": magnitude_scores(1), "l2": magnitude_scores(2),
                 "taylor": taylor_scores, "activation": activation_scores, "learnable": learnable_scores}


def choose_units(scores, source, student):
    """Sorted kept indices: heads[l], kv[l], neurons[l], channels. A kv head and its g = H/Hkv
    query heads move together: the Hkv' best groups, in each the g' = H'/Hkv' best heads."""
    top = lambda v, k: v.topk(k).indices.sort().values               # the k largest, in order
    g, g_student = source.n_head // source.kv_heads, student.n_head // student.kv_heads
    by_heads = scores["heads"].unflatten(-1, (source.kv_heads, g)).sum(-1)   # its heads' sum
    group_scores = scores.get("groups", by_heads)        # unit_sums' metrics also count its k and v
    kv = [top(row, student.kv_heads) for row in group_scores]        # per layer: the kept groups
    heads = [torch.cat([j * g + top(head_row.view(-1, g)[j], g_student) for j in kept_groups])
             for head_row, kept_groups in zip(scores["heads"], kv)]          # g' best heads of each
    return {"heads": heads, "kv": kv, "channels": top(scores["channels"], student.n_embd),
            "neurons": [top(row, student.ffn_hidden) for row in scores["neurons"]]}


def gather(state, cfg, layers, units):       # the student's state dict: kept rows / columns of each
    rows = lambda heads: (heads[:, None] * cfg.head_dim + torch.arange(cfg.head_dim)).reshape(-1)
    ch = units["channels"]                                   # ONE channel set for every matrix
    out = {k: state[k][..., ch] for k in ("tok_emb.weight", "norm.weight", "lm_head.weight")}
    for j, l in enumerate(layers):
        q, kv, f = rows(units["heads"][j]), rows(units["kv"][j]), units["neurons"][j]
        kept = {"attn_norm": (ch,), "ffn_norm": (ch,), "attn.q_proj": (q, ch), "attn.k_proj": (kv, ch),
                "attn.v_proj": (kv, ch), "attn.o_proj": (ch, q), "ffn.gate_proj": (f, ch),
                "ffn.up_proj": (f, ch), "ffn.down_proj": (ch, f)}       # (rows kept, columns kept)
        for name, (r, *c) in kept.items():
            w = state[f"layers.{l}.{name}.weight"][r]
            out[f"layers.{j}.{name}.weight"] = (w[:, c[0]] if c else w).contiguous()
    return out


# ==== The whole procedure.
def make_student_config(cfg, args):
    """The source's config (vocab, context, RoPE: learnt by its weights), the student's shape."""
    shape = {k: getattr(PRESETS[args.preset], k) for k in SHAPE + ("ffn_multiple",)} if args.preset else {}
    shape.update({k: getattr(args, k) for k in SHAPE if getattr(args, k) is not None})
    if args.n_embd is not None and args.n_head is None:
        shape["n_head"] = max(1, args.n_embd // cfg.head_dim)     # whole heads of the source's size
    if "n_head" in shape and args.n_kv_head is None and cfg.n_kv_head:     # the source's group size
        shape["n_kv_head"] = max(1, shape["n_head"] // (cfg.n_head // cfg.kv_heads))
    if args.layers not in LAYER_STRATEGIES and args.n_layer is None:
        shape["n_layer"] = len(args.layers.split(","))
    student = ModelConfig(**{**asdict(cfg), **shape}).validate()   # one-line errors: bad shapes
    for name in ("n_layer", "n_embd", "n_head", "kv_heads", "ffn_hidden"):
        if getattr(student, name) > getattr(cfg, name):
            raise ValueError(f"the student's {name} ({getattr(student, name)}) is larger than the "
                             f"source's ({getattr(cfg, name)}); inheritance takes a subset")
    if student.head_dim != cfg.head_dim:                       # heads are kept whole
        raise ValueError(f"the student's head size {student.head_dim} (n_embd/n_head) is not the "
                         f"source's {cfg.head_dim}; use --n_head={student.n_embd // cfg.head_dim}")
    g, g_source = student.n_head // student.kv_heads, cfg.n_head // cfg.kv_heads   # per kv head
    if g > g_source:                                             # kv groups are kept whole
        raise ValueError(f"query heads per kv head ({g}) exceed the source's ({g_source}); raise --n_kv_head")
    return student


def check_out(args):        # before any work: an --out that would destroy a file, or cannot be made
    out, parent = os.path.realpath(args.out), os.path.dirname(os.path.realpath(args.out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)                        # up to the nearest existing folder
    inputs = [args.src, args.tokenizer, f"{args.calib}/meta.json", f"{args.calib}/train.bin"]
    for bad, why in ((out in [os.path.realpath(path) for path in inputs if path],
                      "is one of this run's inputs; choose a new file"),
                     (os.path.isdir(out), "is a directory; name a file in it, e.g. init.pt"),
                     (os.path.exists(out) and not args.overwrite, "exists; name a new file or add --overwrite"),
                     (not os.path.isdir(parent), f"cannot be made: {parent} is a file")):
        if bad:
            raise ValueError(f"--out={args.out} {why}")


def describe(name, model, calib, args):       # shape, parameters, loss on the "report" windows
    n, c, split = model.param_count(), model.config, calib.meta["splits"]["train"]
    loss = calib_loss(model, calib, args.eval_batches, "report", f"{name} loss")
    print(f"{name}: {c.n_layer} layers x {c.n_embd}, {c.n_head} heads ({c.kv_heads} kv), FFN "
          f"{c.ffn_hidden}; {n['total'] / 1e6:.2f}M parameters ({n['embedding'] / 1e6:.2f}M embedding);"
          f" loss {loss:.4f}, {bits_per_byte(loss, split['tokens'], split['bytes']):.4f} bits/byte")


def inherit(args):
    check_out(args)
    model, ckpt = load_model(args.src, trust=args.trust_checkpoint)   # weights only, unless trusted
    if "tokenizer" not in ckpt:
        raise ValueError(f"{args.src} records no tokenizer; was it made by train.py or inherit.py?")
    cfg, state, tok = model.config, model.state_dict(), ckpt["tokenizer"]
    if args.tokenizer:
        state, cfg, tok = slice_vocab(state, cfg, tok, args.tokenizer)
        (model := Transformer(cfg)).load_state_dict(state)
    student_config = make_student_config(cfg, args)
    if args.seq_len > cfg.block_size:
        raise ValueError(f"--seq_len={args.seq_len} is over the source's context {cfg.block_size}")
    calib = Calib(args.calib, tok, args.seq_len or min(cfg.block_size, 256), args.batch_size, args.seed)
    describe("source ", model, calib, args)
    layers = choose_layers(args.layers, model, student_config.n_layer, calib, args.calib_batches)
    torch.manual_seed(args.seed)                   # width is scored on the depth-pruned source
    scores = WIDTH_METRICS[args.width](with_layers(model, layers), calib, student_config, args)
    units = choose_units(scores, cfg, student_config)
    (student := Transformer(student_config)).load_state_dict(gather(state, cfg, layers, units))
    print(f"layers kept ({args.layers}): {layers} of {cfg.n_layer}; hidden channels "
          f"({args.width}): {len(units['channels'])} of {cfg.n_embd}")
    for j, l in enumerate(layers):
        print(f"  layer {l} -> {j}: heads {units['heads'][j].tolist()} (kv "
              f"{units['kv'][j].tolist()}), {len(units['neurons'][j])} of {cfg.ffn_hidden} neurons")
    describe("student", student, calib, args)
    out = {"model": student.state_dict(), "model_config": asdict(student_config), "tokenizer": tok,
           "inherited_from": {"checkpoint": os.path.abspath(args.src), "layers": layers, "width":
                              args.width, "layer_strategy": args.layers, "tokenizer": args.tokenizer}}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_checkpoint(out, args.out)                   # plain data only: a weights-only load reads it
    print(f"wrote {args.out}; train it with: python train.py "
          f"{shlex.join(['--init_from=' + args.out, '--data=' + args.calib])}")
    return out


OPTIONS = [  # (name, type, default, help); None = required for src/out/calib, else "unset"
    ("src", str, None, "trained source checkpoint (train.py)"),
    ("out", str, None, "student checkpoint to write: a new file"),
    ("calib", str, None, "data/prepare.py folder in the student's tokenizer (its train split)"),
    ("preset", str, None, f"student shape from a preset ({', '.join(PRESETS)}); options override"),
    *[(name, typ, None, "the student's; None: the preset's, else the source's")
      for name, typ in zip(SHAPE, (int, int, int, int, float))],
    ("layers", str, "edges", f"{' | '.join(LAYER_STRATEGIES)} | a list like 0,1,5,11"),
    ("width", str, "taylor", f"unit importance: {' | '.join(WIDTH_METRICS)}"),
    ("tokenizer", str, None, "tokenizer compressed from the source's: keep its tokens' rows"),
    ("calib_batches", int, 8, "calibration batches for importance scores"),
    ("eval_batches", int, 8, "calibration batches (other windows) for the printed losses"),
    ("batch_size", int, 4, "sequences per calibration batch"),
    ("seq_len", int, 0, "tokens per sequence; 0 = min(source context, 256)"),
    ("mask_steps", int, 200, "learnable: mask training steps, a calibration batch each"),
    ("mask_lr", float, 0.05, "learnable: Adam learning rate of the mask scores"),
    ("mask_t0", float, 1.0, "learnable: initial sigmoid temperature"),
    ("mask_t1", float, 0.01, "learnable: final sigmoid temperature"),
    ("seed", int, 1337, "calibration windows, random scores, mask init")]
AT_LEAST = dict(calib_batches=1, eval_batches=1, batch_size=1, mask_steps=1, n_head=1,
                n_kv_head=0, seq_len=0, seed=0)   # n_layer, n_embd: ModelConfig.validate checks


def main(argv=None):
    p = argparse.ArgumentParser(prog="inherit.py", description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name, typ, default, text in OPTIONS:
        p.add_argument(f"--{name}", type=typ, default=default, help=text, required=name in ("src", "out", "calib"))
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--trust_checkpoint", action="store_true", help="unpickle a trusted old --src")
    args = p.parse_args(argv)
    try:
        for name in (*AT_LEAST, "mask_lr", "mask_t0", "mask_t1", "ffn_ratio"):   # the last 4: > 0
            value, low = getattr(args, name), AT_LEAST.get(name)      # `not value > 0`: nan too
            if value is not None and not (value >= low if low is not None else value > 0):
                raise ValueError(f"--{name}={value} must be " + ("positive" if low is None else f"at least {low}"))
        for name, known in (("width", WIDTH_METRICS), ("preset", PRESETS)):
            if getattr(args, name) not in (*known, None):       # None: --preset unset
                raise ValueError(f"unknown --{name}={getattr(args, name)!r}; choose one of {', '.join(known)}")
        return inherit(args)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"inherit.py: error: {e}")
    except KeyboardInterrupt:                       # the save is atomic: no half-written student
        sys.exit("inherit.py: interrupted before the student was saved; nothing was written")


if __name__ == "__main__":
    main()
