"""Time one training step of our Transformer against nanoGPT's GPT at the same shape, here.

    python bench/train_bench.py --nanogpt=/tmp/nanogpt    # a folder holding nanoGPT's model.py
    python bench/train_bench.py --nanogpt=/tmp/nanogpt --profile # + the top ops of one step of each
    python bench/train_bench.py --nanogpt=/tmp/nanogpt --n_layer=4 --n_embd=128 --n_head=4 \\
        --vocab=8192 --seq_len=128 --ffn_multiple=32             # the reproduction studies' shape

A step is forward + backward + AdamW step on one fixed batch (fp32). Defaults are the README's CPU
comparison: 6 layers x 384, 6 heads, vocabulary 16,384, batch 16 x 256 tokens, our head untied.
nanoGPT's model.py is imported from --nanogpt, never copied here: fetch github.com/karpathy/nanoGPT.
Each model trains as its own project does: ours with train.py's AdamW (fused, also on CPU), nanoGPT
with its configure_optimizers() (the for-loop AdamW on CPU).

Runs are interleaved (ours, theirs, theirs, ours, ...) and repeated: a neighbour's load hits both;
the median tokens/s of each is reported with the spread of the per-round ratios. On a shared machine
wall-clock rates swing with the load, so tokens per CPU-second of this process are printed too: much
less sensitive to load (with --threads=1 most of all). The architectures differ (ours: LLaMA-style,
SwiGLU at 8/3 with three matrices, RoPE, RMSNorm; nanoGPT: GPT-2, GELU MLP at 4x, learned positions,
LayerNorm, tied head), so FLOPs per token are counted the same way for both and the ratio per FLOP
is printed as well.
"""
import argparse
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from model import Transformer, model_config  # noqa: E402


def linear_flops_per_token(model, n_layer, n_embd, seq_len):
    """Training FLOPs per token, one formula for both models: 6 per weight of every nn.Linear
    (forward + backward) plus causal attention's QK^T and AV, 6 * L * T * C."""
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 6 * weights + 6 * n_layer * seq_len * n_embd


def our_optimizer(model, adamw):
    """AdamW as train.py builds it: weight decay on matrices only, betas (0.9, 0.95)."""
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    kind = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}
    return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95), **kind[adamw])


def build(args):
    """{name: (model, optimizer, flops per token)}: ours and, with --nanogpt, nanoGPT's GPT."""
    torch.manual_seed(0)
    # ours: the tiny preset's family at the asked shape (SwiGLU hidden 8/3 x C, untied head)
    ours = Transformer(model_config("tiny", n_layer=args.n_layer, n_embd=args.n_embd,
                                    n_head=args.n_head, vocab_size=args.vocab, block_size=args.seq_len,
                                    ffn_multiple=args.ffn_multiple, tie_embeddings=args.tie_embeddings))
    out = {"ours": (ours, our_optimizer(ours, args.adamw))}
    if args.nanogpt:
        # nanoGPT's own file, imported by path: its GPT and its own AdamW set-up, untouched
        path = os.path.join(args.nanogpt, "model.py")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found; --nanogpt: a folder holding nanoGPT's model.py")
        spec = importlib.util.spec_from_file_location("nanogpt_model", path)
        nano = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(nano)
        cfg = nano.GPTConfig(block_size=args.seq_len, vocab_size=args.vocab, n_layer=args.n_layer,
                             n_head=args.n_head, n_embd=args.n_embd, dropout=0.0,
                             bias=False)                       # as its train.py's defaults
        with contextlib.redirect_stdout(io.StringIO()):        # nanoGPT prints its parameter counts
            gpt = nano.GPT(cfg)
            out["nanoGPT"] = (gpt, gpt.configure_optimizers(0.1, 1e-4, (0.9, 0.95), "cpu"))
    for name, (m, opt) in out.items():       # FLOPs counted on the plain module, before compiling
        m.train()
        out[name] = (torch.compile(m) if args.compile else m, opt,
                     linear_flops_per_token(m, args.n_layer, args.n_embd, args.seq_len))
    return out


def step(model, opt, x, y):
    """One training step: forward with the loss, backward, AdamW, gradients freed."""
    _, loss = model(x, y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--nanogpt", default="", help="folder with nanoGPT's model.py; without it: ours only")
    p.add_argument("--n_layer", type=int, default=6, help="layers")
    p.add_argument("--n_embd", type=int, default=384, help="hidden size")
    p.add_argument("--n_head", type=int, default=6, help="attention heads")
    p.add_argument("--vocab", type=int, default=16384, help="vocabulary rows")
    p.add_argument("--batch_size", type=int, default=16, help="sequences per step")
    p.add_argument("--seq_len", type=int, default=256, help="tokens per sequence")
    p.add_argument("--ffn_multiple", type=int, default=64,
                   help="our SwiGLU size, 8/3 x n_embd, rounded up to this (64: tiny; 32: the studies)")
    p.add_argument("--tie_embeddings", action="store_true",
                   help="tie our head to the embedding, as nanoGPT (PanGu-π Pro unties them)")
    p.add_argument("--adamw", default="fused", choices=["fused", "foreach", "for-loop"],
                   help="our AdamW implementation (train.py: fused)")
    p.add_argument("--compile", action="store_true", help="torch.compile both models (inductor; on a CPU "
                   "it needs a C++ compiler); prints the first step's time, compiling included")
    p.add_argument("--steps", type=int, default=3, help="timed steps per run")
    p.add_argument("--rounds", type=int, default=5, help="interleaved runs of each model")
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    p.add_argument("--profile", action="store_true", help="profile one step of each: the top ops")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.nanogpt:
        print("train_bench.py: no --nanogpt=PATH given (nanoGPT's model.py folder): timing ours only")
    models = build(args)
    # one fixed random batch for every step: data loading is not what is timed
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, args.vocab, (args.batch_size, args.seq_len), generator=g)
    y = torch.randint(0, args.vocab, (args.batch_size, args.seq_len), generator=g)
    tokens = args.batch_size * args.seq_len * args.steps
    for name, (m, opt, _) in models.items():      # warm-up: allocations, AdamW's state, compiling
        t0 = time.perf_counter()
        step(m, opt, x, y)
        if args.compile:
            print(f"{name}: first step, torch.compile included: {time.perf_counter() - t0:.1f} s")

    if args.profile:                    # where a step's time goes: matmuls vs. per-op overhead
        from torch.profiler import profile, ProfilerActivity
        for name, (m, opt, _) in models.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step(m, opt, x, y)
            print(f"--- {name}: one step, top ops by self CPU time")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))

    # tokens/s by the wall clock and per CPU-second of this process (the work, whatever the load)
    rates = {(name, clock): [] for name in models for clock in ("wall", "cpu")}
    names = list(models)           # each round times every model, order reversed every other round
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:        # ABBA order: drift hits both
            m, opt, _ = models[name]
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(m, opt, x, y)
            rates[name, "wall"].append(tokens / (time.perf_counter() - t0))
            rates[name, "cpu"].append(tokens / (time.process_time() - c0))
    # the shape and settings first, so a pasted result says what was measured
    print(f"shape: {args.n_layer} layers x {args.n_embd}, {args.n_head} heads, vocab {args.vocab}, "
          f"batch {args.batch_size} x {args.seq_len}, fp32, {torch.get_num_threads()} threads, "
          f"{args.rounds} runs of {args.steps} steps each; our AdamW {args.adamw}"
          + (", compiled" if args.compile else ""))
    med = {key: statistics.median(v) for key, v in rates.items()}     # medians: robust to a burst
    for name, (m, _, flops) in models.items():
        n = sum(p.numel() for p in m.parameters())
        wall, cpu = rates[name, "wall"], rates[name, "cpu"]
        print(f"{name:>8}: {med[name, 'wall']:7.0f} tokens/s (min {min(wall):.0f}, max {max(wall):.0f}),"
              f" "
              f"{med[name, 'cpu']:7.0f} tokens/CPU-s (min {min(cpu):.0f}, max {max(cpu):.0f}); "
              f"{n / 1e6:.2f}M params, {flops / 1e6:.1f} MFLOP/token")
    if "nanoGPT" in models:
        flop_ratio = models["ours"][2] / models["nanoGPT"][2]        # > 1: ours computes more
        for clock, unit in (("wall", "tokens/s"), ("cpu", "tokens/CPU-s")):
            per_round = [a / b for a, b in zip(rates["ours", clock], rates["nanoGPT", clock])]
            ratio = med["ours", clock] / med["nanoGPT", clock]
            print(f"ours / nanoGPT, {unit}: {ratio:.3f}x (per-round {min(per_round):.3f}.."
                  f"{max(per_round):.3f}); per FLOP {ratio * flop_ratio:.3f}x (ours needs "
                  f"{flop_ratio:.3f}x "
                  f"the FLOPs per token)")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"train_bench.py: error: {e}")
