"""
inherit.py — parameter inheritance (PanGu-π Pro, paper §3.3; ../shared/PAPER.md §3): initialise a tiny
model from a larger trained one instead of at random, the paper's largest single gain.

    python inherit.py --src=out/ckpt.pt --out=out_small/init.pt --n_layer=4 --n_embd=128 \
                      --layers=edges --width=taylor --calib=data/shakespeare-compact
    python train.py --init_from=out_small/init.pt --n_layer=4 ...     # trains it like any checkpoint

The student takes a subset of the source along three axes, in this order:
  1. tokens  (--tokenizer): with a tokenizer compressed from the source's, the embedding / LM-head rows of
             the kept tokens (paper §3.1 meets §3.3). Everything after runs on this sliced source.
  2. layers  (--layers): which whole blocks survive; the paper finds the first and last matter most.
  3. width   (--width): inside the kept layers, which attention heads (whole heads, head size kept; with
             grouped-query attention whole kv groups), SwiGLU neurons (rows of gate/up, columns of down)
             and hidden channels (ONE channel set shared by the embedding, the LM head, every RMSNorm weight
             and every projection's input/output, so the residual stream stays aligned) are kept, by an
             importance score computed on calibration data of the depth-pruned source.
Kept units stay in their original order, so inheriting into the source's own shape is the identity.
"""
import argparse
import copy
import json
import math
import os
import sys
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from model import ModelConfig, PRESETS, RMSNorm, Transformer, load_model, padded_vocab, save_checkpoint

LAYER_STRATEGIES = ("first", "last", "uniform", "edges", "importance")
WIDTH_METRICS = ("random", "l1", "l2", "taylor", "activation", "learnable")
SHAPE = ("n_layer", "n_embd", "n_head", "n_kv_head", "ffn_ratio")   # what a student may change


# ==== Calibration data: random windows of a data/prepare.py shard folder (seeded: the same every run).
class Calib:
    def __init__(self, folder, seq_len, batch_size, seed):
        meta_path = os.path.join(folder, "meta.json")
        if not os.path.exists(meta_path):
            raise FileNotFoundError(f"{meta_path} not found: --calib must be a folder written by data/prepare.py")
        with open(meta_path) as f:
            self.meta = json.load(f)
        self.folder, self.T, self.B, self.seed = folder, seq_len, batch_size, seed

    def batches(self, n, split="train", offset=0):
        """n batches (x, y) of B windows of T+1 tokens; batch i is fixed by (seed, split, offset + i)."""
        tokens = np.memmap(os.path.join(self.folder, f"{split}.bin"), dtype=self.meta["dtype"], mode="r")
        if len(tokens) <= self.T + 1:
            raise ValueError(f"{self.folder}/{split}.bin has {len(tokens)} tokens: fewer than one window of "
                             f"--seq_len={self.T}; lower it or prepare more text")
        for i in range(offset, offset + n):
            starts = np.random.default_rng([self.seed, split == "val", i]).integers(0, len(tokens) - self.T - 1, self.B)
            x = torch.from_numpy(np.stack([tokens[s:s + self.T + 1] for s in starts]).astype(np.int64))
            yield x[:, :-1], x[:, 1:]

    def bits_per_byte(self, loss, split="val"):
        s = self.meta["splits"][split]
        return loss / math.log(2) * s["tokens"] / s["bytes"]          # nats/token -> bits/byte


def bar(it, n, desc):
    from tqdm import tqdm
    return tqdm(it, total=n, desc=desc, leave=False, dynamic_ncols=True)


@torch.no_grad()
def calib_loss(model, calib, n_batches, desc="calibration loss"):
    """Mean LM loss (nats/token) on n_batches fixed held-out windows (the val split)."""
    model.eval()
    return sum(model(x, y)[1].item() for x, y in bar(calib.batches(n_batches, "val"), n_batches, desc)) / n_batches


# ==== 1. Tokens: the embedding / LM-head rows of a compressed tokenizer's kept tokens (paper §3.1).
def slice_vocab(sd, cfg, tok, tokenizer_path):
    """(state dict, config, tokenizer identity) for the compressed tokenizer: row new_id of tok_emb / lm_head
    = row new_to_old[new_id] of the source, so the logits of kept tokens are unchanged. The vocabulary is padded
    to model.padded_vocab with copies of the source's padding rows (training taught them to stay unlikely)."""
    from tokenizer_compress import load_tokenizer, tokenizer_identity, tokenizer_info
    info, enc = tokenizer_info(tokenizer_path), load_tokenizer(tokenizer_path)
    if info["source"]["sha256"] != tok["sha256"]:
        raise ValueError(f"{tokenizer_path} was compressed from {info['source']['name']!r}, but the source model uses "
                         f"{tok['name']!r}; compress the source's own tokenizer (tokenizer_compress.py)")
    if cfg.vocab_size < tok["n_vocab"]:
        raise ValueError(f"the source has {cfg.vocab_size:,} embedding rows, fewer than the {tok['n_vocab']:,} ids of its "
                         f"tokenizer {tok['name']!r}; is its tokenizer record wrong?")
    new_to_old = torch.tensor(enc.new_to_old)
    V, old_pad = padded_vocab(enc.n_vocab), torch.arange(tok["n_vocab"], cfg.vocab_size)
    sd = dict(sd)
    for k in ("tok_emb.weight", "lm_head.weight"):
        w = sd[k]
        pad = w[old_pad[torch.arange(V - enc.n_vocab) % len(old_pad)]] if len(old_pad) else w.new_zeros(V - enc.n_vocab, w.size(1))
        sd[k] = torch.cat([w[new_to_old], pad])
    return sd, ModelConfig(**{**asdict(cfg), "vocab_size": V}), tokenizer_identity(enc)


# ==== 2. Layers: which whole blocks the student keeps.
def with_layers(model, layers):
    """A model that shares the source's weights (no copies) but runs only the given blocks."""
    m = copy.copy(model)
    m._modules = dict(model._modules)                      # its own module table: the source stays whole
    m.layers = torch.nn.ModuleList(model.layers[i] for i in layers)
    m.config = ModelConfig(**{**asdict(model.config), "n_layer": len(layers)})
    return m


@torch.no_grad()
def choose_layers(strategy, model, n, calib, n_batches):
    """Indices (increasing) of the n kept source layers, of L.
    first / last: layers 0..n-1 / L-n..L-1.  uniform: every (L/n)-th from layer 0, i*L//n.
    edges: the first ceil(n/2) and the last floor(n/2), dropping a middle block (the paper: the first and last
    layers matter most, intermediate ones are redundant).  importance: the n layers whose removal raises the
    calibration loss most. We measure the LOSS increase (as the paper did, by removing layers and evaluating),
    not Minitron's 1 - cos(input, output): the cosine is a proxy for what skipping does to the residual stream,
    the loss is what we want to keep low, and L extra calibration passes are cheap at a tiny model's depth.
    A comma list (0,1,5,11) keeps those layers."""
    L = len(model.layers)
    if strategy in LAYER_STRATEGIES and n == L:
        return list(range(L))
    if strategy == "first":
        return list(range(n))
    if strategy == "last":
        return list(range(L - n, L))
    if strategy == "uniform":
        return [i * L // n for i in range(n)]
    if strategy == "edges":
        return list(range((n + 1) // 2)) + list(range(L - n // 2, L))
    if strategy == "importance":
        base = calib_loss(model, calib, n_batches, "layer importance: full model")
        rise = []
        for i in range(L):
            skipped = with_layers(model, [j for j in range(L) if j != i])
            rise.append(calib_loss(skipped, calib, n_batches, f"layer importance: without layer {i}") - base)
        print("loss rise when a layer is skipped: " + " ".join(f"{i}:{r:+.3f}" for i, r in enumerate(rise)))
        return sorted(torch.tensor(rise).topk(n).indices.tolist())
    try:
        layers = sorted(int(s) for s in strategy.split(","))
    except ValueError:
        raise ValueError(f"--layers={strategy!r}: choose {', '.join(LAYER_STRATEGIES)} or a list like 0,1,5,11") from None
    if len(set(layers)) != len(layers) or layers[0] < 0 or layers[-1] >= L or len(layers) != n:
        raise ValueError(f"--layers={strategy}: give {n} different layer indices in 0..{L - 1} (the source has {L} layers)")
    return layers


# ==== 3. Width: an importance score per unit; the student keeps the top-k.
#   heads (L', H), neurons (L', F), channels (C,) of the depth-pruned source (L' kept layers).
def unit_sums(sal, cfg, n_layer):
    """Sum a per-weight saliency (a dict like the state dict) over each unit's weights.
    head h: rows h*D..(h+1)*D of q_proj + the same columns of o_proj.  neuron i: row i of gate and up + column i
    of down.  channel c: column c of the embedding, LM head and every q/k/v/gate/up; row c of every o/down;
    entry c of every RMSNorm weight."""
    H, D, C = cfg.n_head, cfg.head_dim, cfg.n_embd
    heads, neurons, channels = [], [], sal["tok_emb.weight"].sum(0) + sal["norm.weight"]
    if not cfg.tie_embeddings:
        channels = channels + sal["lm_head.weight"].sum(0)
    for l in range(n_layer):
        w = {k.split(".", 2)[2]: v for k, v in sal.items() if k.startswith(f"layers.{l}.")}
        heads.append(w["attn.q_proj.weight"].view(H, D, C).sum((1, 2)) + w["attn.o_proj.weight"].view(C, H, D).sum((0, 2)))
        neurons.append(w["ffn.gate_proj.weight"].sum(1) + w["ffn.up_proj.weight"].sum(1) + w["ffn.down_proj.weight"].sum(0))
        channels = channels + w["attn_norm.weight"] + w["ffn_norm.weight"]
        for k in ("attn.q_proj", "attn.k_proj", "attn.v_proj", "ffn.gate_proj", "ffn.up_proj"):
            channels = channels + w[k + ".weight"].sum(0)
        channels = channels + w["attn.o_proj.weight"].sum(1) + w["ffn.down_proj.weight"].sum(1)
    return {"heads": torch.stack(heads), "neurons": torch.stack(neurons), "channels": channels}


def width_scores(metric, model, calib, n_batches, keep, args):
    """Importance of every head, neuron and channel (higher = keep). l2 ranks by the sum of squares, which orders
    units exactly as their L2 norm does.  taylor: sum over calibration batches of |w * dL/dw| (first-order loss
    change if the weight were removed).  activation: mean |activation| on calibration data (Minitron, no
    gradients): the o_proj input of each head, the down_proj input of each neuron, the RMSNorm outputs of
    each channel.  learnable: see learn_masks()."""
    cfg, L = model.config, len(model.layers)
    params = dict(model.named_parameters())
    if metric == "random":
        g = torch.Generator().manual_seed(args.seed)
        return {"heads": torch.rand(L, cfg.n_head, generator=g), "neurons": torch.rand(L, cfg.ffn_hidden, generator=g),
                "channels": torch.rand(cfg.n_embd, generator=g)}
    if metric in ("l1", "l2"):
        return unit_sums({k: p.detach().abs() if metric == "l1" else p.detach() ** 2 for k, p in params.items()}, cfg, L)
    if metric == "taylor":
        sal = {k: torch.zeros_like(p) for k, p in params.items()}
        model.eval()
        for x, y in bar(calib.batches(n_batches), n_batches, "taylor importance"):
            model.zero_grad(set_to_none=True)
            model(x, y)[1].backward()
            for k, p in params.items():
                sal[k] += (p.detach() * p.grad).abs()
        model.zero_grad(set_to_none=True)
        return unit_sums(sal, cfg, L)
    if metric == "activation":
        acc = {"heads": torch.zeros(L, cfg.n_head), "neurons": torch.zeros(L, cfg.ffn_hidden), "channels": torch.zeros(cfg.n_embd)}

        def add(kind, l):
            def hook(mod, inp, out=None):
                a = (out[0] if isinstance(out, tuple) else out) if out is not None else inp[0]
                a = a.detach().abs().mean((0, 1))                                       # (units,) or (H*D,)
                if kind == "channels":
                    acc[kind] += a
                else:
                    acc[kind][l] += a.view(cfg.n_head, -1).mean(1) if kind == "heads" else a
            return hook
        hooks = [m.register_forward_hook(add("channels", None)) for m in model.modules() if isinstance(m, RMSNorm)]
        for l, blk in enumerate(model.layers):
            hooks += [blk.attn.o_proj.register_forward_pre_hook(add("heads", l)),
                      blk.ffn.down_proj.register_forward_pre_hook(add("neurons", l))]
        with torch.no_grad():
            for x, _ in bar(calib.batches(n_batches), n_batches, "activation importance"):
                model(x)
        for h in hooks:
            h.remove()
        return acc
    if metric == "learnable":
        return learn_masks(model, calib, keep, args)
    raise ValueError(f"--width={metric!r}: choose one of {', '.join(WIDTH_METRICS)}")


def learn_masks(model, calib, keep, args):
    """The paper's best criterion, whose training it did not publish (PAPER.md §3). Our choice: a learnable score
    s_u per unit and a top-k mask relaxed by a sigmoid whose temperature anneals to zero,

        m_u = sigmoid((s_u - theta) / t),   theta = midpoint of the k-th and (k+1)-th largest s (per layer for
                                            heads and neurons, global for channels),  t: t0 -> t1 geometrically,

    trained with Adam on the LM loss of the masked source (weights frozen) over --mask_steps calibration batches;
    then the top-k scores are kept. Why not Sheared-LLaMA's hard-concrete gates with a Lagrangian: its size is met
    only in expectation, and a few hundred CPU steps do not settle the multipliers. Here exactly k units have
    m > 1/2 at every step, so the size constraint holds by construction, and as t -> 0 the masked source
    becomes the student itself. Why not a hard top-k forward with a straight-through backward: hidden channels
    are chained through the residual stream, so a channel that is off everywhere gets zero gradient and can
    never come back; the soft masks of early steps let every unit show its value.
    Masking: a head's slice of the o_proj input, a neuron's entry of the down_proj input; a channel is masked
    where it enters the residual stream (embedding, o_proj and down_proj outputs), and RMSNorm outputs are
    scaled by sqrt(k/C) because the student normalises over k channels, not C."""
    cfg, L = model.config, len(model.layers)
    n = {"heads": cfg.n_head, "neurons": cfg.ffn_hidden, "channels": cfg.n_embd}
    g = torch.Generator().manual_seed(args.seed)
    s = {kind: (1e-3 * torch.randn((L, n[kind]) if kind != "channels" else (n[kind],), generator=g)).requires_grad_()
         for kind in n}
    if all(keep[kind] == n[kind] for kind in n):
        return {kind: sc.detach() for kind, sc in s.items()}          # nothing to choose
    for p in model.parameters():
        p.requires_grad_(False)
    m = {}

    def masks(t):
        for kind, sc in s.items():
            k = keep[kind]
            if k == n[kind]:
                m[kind] = torch.ones_like(sc)
                continue
            top = sc.detach().topk(k + 1, dim=-1).values
            theta = (top[..., k - 1] + top[..., k]) / 2
            m[kind] = torch.sigmoid((sc - theta.unsqueeze(-1) if sc.dim() == 2 else sc - theta) / t)
    D, scale = cfg.head_dim, math.sqrt(keep["channels"] / cfg.n_embd)
    hooks = [model.tok_emb.register_forward_hook(lambda mod, i, o: o * m["channels"])]
    hooks += [mod.register_forward_hook(lambda mod, i, o: (o[0] * scale, o[1]) if isinstance(o, tuple) else o * scale)
              for mod in model.modules() if isinstance(mod, RMSNorm)]
    for l, blk in enumerate(model.layers):
        hooks += [blk.attn.o_proj.register_forward_pre_hook(lambda mod, i, l=l: i[0] * m["heads"][l].repeat_interleave(D)),
                  blk.ffn.down_proj.register_forward_pre_hook(lambda mod, i, l=l: i[0] * m["neurons"][l]),
                  blk.attn.o_proj.register_forward_hook(lambda mod, i, o: o * m["channels"]),
                  blk.ffn.down_proj.register_forward_hook(lambda mod, i, o: o * m["channels"])]
    opt = torch.optim.Adam(s.values(), lr=args.mask_lr)
    model.train()
    steps = args.mask_steps
    for step, (x, y) in enumerate(bar(calib.batches(steps, offset=10_000), steps, "learnable masks")):
        masks(args.mask_t0 * (args.mask_t1 / args.mask_t0) ** (step / max(1, steps - 1)))
        loss = model(x, y)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    for h in hooks:
        h.remove()
    for p in model.parameters():
        p.requires_grad_(True)
    return {kind: sc.detach() for kind, sc in s.items()}


def choose_units(scores, keep, cfg, tcfg):
    """Sorted kept indices: heads[l] (query heads), kv[l] (kv heads), neurons[l], channels. With grouped-query
    attention a kv head and its g = H/Hkv query heads move together: the student keeps the Hkv' groups of highest
    total query-head score, and inside each the g' = H'/Hkv' best query heads (g' <= g)."""
    top = lambda v, k: v.topk(k).indices.sort().values
    g, g_s = cfg.n_head // cfg.kv_heads, tcfg.n_head // tcfg.kv_heads
    heads, kv = [], []
    for row in scores["heads"]:
        grouped = row.view(cfg.kv_heads, g)
        groups = top(grouped.sum(1), tcfg.kv_heads)
        kv.append(groups)
        heads.append(torch.cat([grp * g + top(grouped[grp], g_s) for grp in groups.tolist()]))
    return {"heads": heads, "kv": kv, "neurons": [top(r, keep["neurons"]) for r in scores["neurons"]],
            "channels": top(scores["channels"], keep["channels"])}


def gather(sd, cfg, layers, units):
    """The student's state dict: the kept rows / columns of every source matrix (see the module docstring)."""
    D, ch = cfg.head_dim, units["channels"]
    rows = lambda heads: (heads[:, None] * D + torch.arange(D)).reshape(-1)     # head ids -> their D rows
    out = {"tok_emb.weight": sd["tok_emb.weight"][:, ch], "norm.weight": sd["norm.weight"][ch]}
    out["lm_head.weight"] = out["tok_emb.weight"] if cfg.tie_embeddings else sd["lm_head.weight"][:, ch]
    for j, l in enumerate(layers):
        w = lambda name: sd[f"layers.{l}.{name}.weight"]
        q, kv, f = rows(units["heads"][j]), rows(units["kv"][j]), units["neurons"][j]
        new = {"attn_norm": w("attn_norm")[ch], "ffn_norm": w("ffn_norm")[ch],
               "attn.q_proj": w("attn.q_proj")[q][:, ch], "attn.k_proj": w("attn.k_proj")[kv][:, ch],
               "attn.v_proj": w("attn.v_proj")[kv][:, ch], "attn.o_proj": w("attn.o_proj")[ch][:, q],
               "ffn.gate_proj": w("ffn.gate_proj")[f][:, ch], "ffn.up_proj": w("ffn.up_proj")[f][:, ch],
               "ffn.down_proj": w("ffn.down_proj")[ch][:, f]}
        out.update({f"layers.{j}.{k}.weight": v.contiguous() for k, v in new.items()})
    return out


# ==== The whole procedure.
def student_config(cfg, args):
    """The source's config with the student's shape: --preset's shape fields, then explicit options. The
    vocabulary, context, RoPE and norm settings stay the source's (the weights were trained with them)."""
    shape = {}
    if args.preset:
        if args.preset not in PRESETS:
            raise ValueError(f"unknown --preset={args.preset!r}; choose one of {', '.join(PRESETS)}")
        shape = {k: getattr(PRESETS[args.preset], k) for k in SHAPE + ("ffn_multiple",)}
    shape.update({k: getattr(args, k) for k in SHAPE if getattr(args, k) is not None})
    if args.n_embd is not None and args.n_head is None:
        shape["n_head"] = max(1, args.n_embd // cfg.head_dim)     # whole heads of the source's size
    if "n_head" in shape and args.n_kv_head is None and cfg.n_kv_head:
        shape["n_kv_head"] = max(1, shape["n_head"] // (cfg.n_head // cfg.kv_heads))   # the source's group size
    if args.layers not in LAYER_STRATEGIES and args.n_layer is None:
        shape["n_layer"] = len(args.layers.split(","))
    t = ModelConfig(**{**asdict(cfg), **shape}).validate()
    for name, a, b in (("n_layer", t.n_layer, cfg.n_layer), ("n_embd", t.n_embd, cfg.n_embd), ("n_head", t.n_head, cfg.n_head),
                       ("kv heads", t.kv_heads, cfg.kv_heads), ("FFN hidden size", t.ffn_hidden, cfg.ffn_hidden)):
        if a > b:
            raise ValueError(f"the student's {name} ({a}) is larger than the source's ({b}); inheritance can only take a subset")
    if t.head_dim != cfg.head_dim:
        raise ValueError(f"heads are kept whole: the student's head size n_embd/n_head = {t.n_embd}/{t.n_head} = {t.head_dim} "
                         f"differs from the source's {cfg.head_dim}; use --n_head={t.n_embd // cfg.head_dim}")
    if t.n_head // t.kv_heads > cfg.n_head // cfg.kv_heads:
        raise ValueError(f"the student's query heads per kv head ({t.n_head // t.kv_heads}) exceed the source's "
                         f"({cfg.n_head // cfg.kv_heads}); kv groups are kept whole: raise --n_kv_head")
    return t


def describe(name, model, loss, calib):
    n = model.param_count()
    print(f"{name}: {model.config.n_layer} layers x {model.config.n_embd}, {model.config.n_head} heads "
          f"({model.config.kv_heads} kv), FFN {model.config.ffn_hidden}; parameters {n['total'] / 1e6:.2f}M = embedding "
          f"{n['embedding'] / 1e6:.2f}M + head {n['lm_head'] / 1e6:.2f}M + rest {n['rest'] / 1e6:.2f}M; "
          f"calibration loss {loss:.4f}, {calib.bits_per_byte(loss):.4f} bits per byte")


def inherit(args):
    model, ckpt = load_model(args.src)
    if "tokenizer" not in ckpt:
        raise ValueError(f"{args.src} records no tokenizer; was it written by train.py or inherit.py?")
    cfg, sd, tok = model.config, model.state_dict(), ckpt["tokenizer"]
    if args.tokenizer:
        sd, cfg, tok = slice_vocab(sd, cfg, tok, args.tokenizer)
        model = Transformer(cfg)
        model.load_state_dict(sd)
    tcfg = student_config(cfg, args)
    if args.seq_len > cfg.block_size:
        raise ValueError(f"--seq_len={args.seq_len} is longer than the source's context ({cfg.block_size}); lower it")
    calib = Calib(args.calib, args.seq_len or min(cfg.block_size, 256), args.batch_size, args.seed)
    if calib.meta["tokenizer"]["sha256"] != tok["sha256"]:
        raise ValueError(f"{args.calib} was made with tokenizer {calib.meta['tokenizer']['name']!r}, the student uses "
                         f"{tok['name']!r}; prepare calibration data with it (data/prepare.py --tokenizer=...)")
    describe("source ", model, calib_loss(model, calib, args.eval_batches, "source loss"), calib)

    layers = choose_layers(args.layers, model, tcfg.n_layer, calib, args.calib_batches)
    pruned = with_layers(model, layers)                        # the depth-pruned source: width is scored on it
    keep = {"heads": tcfg.n_head, "neurons": tcfg.ffn_hidden, "channels": tcfg.n_embd}
    torch.manual_seed(args.seed)
    scores = width_scores(args.width, pruned, calib, args.calib_batches, keep, args)
    units = choose_units(scores, keep, cfg, tcfg)
    student = Transformer(tcfg)
    student.load_state_dict(gather(sd, cfg, layers, units))
    print(f"layers kept ({args.layers}): {layers} of {cfg.n_layer}")
    for j, l in enumerate(layers):
        print(f"  layer {l} -> {j}: heads {units['heads'][j].tolist()}" + (f" (kv {units['kv'][j].tolist()})" if cfg.n_kv_head else "")
              + f", {len(units['neurons'][j])} of {cfg.ffn_hidden} neurons")
    print(f"hidden channels ({args.width}): {len(units['channels'])} of {cfg.n_embd}")
    describe("student", student, calib_loss(student, calib, args.eval_batches, "student loss"), calib)
    out = {"model": student.state_dict(), "model_config": asdict(tcfg), "tokenizer": tok,
           "inherited_from": {"checkpoint": os.path.abspath(args.src), "layers": layers, "layer_strategy": args.layers,
                              "width": args.width, "tokenizer": args.tokenizer}}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_checkpoint(out, args.out)
    print(f"wrote {args.out}; train it with: python train.py --init_from={args.out} --data={args.calib}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="inherit.py", description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--src", required=True, help="trained source checkpoint (train.py)")
    p.add_argument("--out", required=True, help="student checkpoint to write (for train.py --init_from)")
    p.add_argument("--calib", required=True, help="calibration data: a data/prepare.py folder in the student's tokenizer")
    p.add_argument("--preset", default=None, help=f"student shape from a preset ({', '.join(PRESETS)}); options below override it")
    for k, typ in zip(SHAPE, (int, int, int, int, float)):
        p.add_argument(f"--{k}", type=typ, default=None, help=f"student {k} (default: the preset's, else the source's)")
    p.add_argument("--layers", default="edges", help=f"{' | '.join(LAYER_STRATEGIES)} | a list like 0,1,5,11 (see choose_layers)")
    p.add_argument("--width", default="taylor", help=f"importance of heads / neurons / channels: {' | '.join(WIDTH_METRICS)}")
    p.add_argument("--tokenizer", default=None, help="compressed tokenizer (tokenizer_compress.py) derived from the source's: keep its tokens' rows")
    p.add_argument("--calib_batches", type=int, default=8, help="calibration batches for importance scores")
    p.add_argument("--eval_batches", type=int, default=8, help="held-out (val split) batches for the printed losses")
    p.add_argument("--batch_size", type=int, default=4, help="sequences per calibration batch")
    p.add_argument("--seq_len", type=int, default=0, help="tokens per sequence; 0 = min(source context, 256)")
    p.add_argument("--mask_steps", type=int, default=200, help="learnable: mask training steps (one calibration batch each)")
    p.add_argument("--mask_lr", type=float, default=0.05, help="learnable: Adam learning rate of the mask scores")
    p.add_argument("--mask_t0", type=float, default=1.0, help="learnable: initial sigmoid temperature")
    p.add_argument("--mask_t1", type=float, default=0.01, help="learnable: final sigmoid temperature")
    p.add_argument("--seed", type=int, default=1337, help="calibration windows, random scores, mask init")
    args = p.parse_args(argv)
    try:
        for k in ("calib_batches", "eval_batches", "batch_size", "mask_steps"):
            if getattr(args, k) < 1:
                raise ValueError(f"--{k}={getattr(args, k)} must be at least 1")
        if args.width not in WIDTH_METRICS:
            raise ValueError(f"--width={args.width!r}: choose one of {', '.join(WIDTH_METRICS)}")
        return inherit(args)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"inherit.py: error: {e}")


if __name__ == "__main__":
    main()
