"""Time one training step of our Transformer against nanoGPT's GPT at the same shape, on this machine.

    python bench/train_bench.py --nanogpt=/tmp/nanogpt              # a folder holding nanoGPT's model.py
    python bench/train_bench.py --nanogpt=/tmp/nanogpt --profile    # also the top ops of one step of each

A step is forward + backward + AdamW step on one fixed batch (fp32, no compile). Defaults are the shape of
the README's CPU comparison: 6 layers x 384, 6 heads, vocabulary 16,384, batch 16 x 256 tokens. nanoGPT's
model.py is imported from --nanogpt, never copied here: fetch github.com/karpathy/nanoGPT yourself.

Runs are interleaved (ours, theirs, theirs, ours, ...) and repeated, so a neighbour's load hits both; the
median tokens/s of each is reported with the spread of the per-round ratios. On a shared machine wall-clock
rates swing with the neighbours' load, so tokens per CPU-second of this process (time.process_time) are
printed too: the work a step needs, much less sensitive to load (with --threads=1 most of all). The two models are not the
same architecture: ours is LLaMA-style (SwiGLU FFN at 8/3 with three matrices, RoPE, RMSNorm, untied head),
nanoGPT's is GPT-2 (GELU MLP at 4x, learned positions, LayerNorm, tied head). So the script also prints
FLOPs per token, counted the same way for both (6 x the nn.Linear weights + 6 * L * T * C for causal
attention), and the ratio per FLOP.
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from model import Transformer, model_config  # noqa: E402


def linear_flops_per_token(model, n_layer, n_embd, seq_len):
    """Training FLOPs per token, one formula for both models: 6 per weight of every nn.Linear (forward +
    backward) plus causal attention's QK^T and AV, 6 * L * T * C."""
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 6 * weights + 6 * n_layer * seq_len * n_embd


def build(args):
    """{name: (model, optimizer, flops per token)}: ours and, with --nanogpt, nanoGPT's GPT."""
    torch.manual_seed(0)
    ours = Transformer(model_config("tiny", n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head,
                                    vocab_size=args.vocab, block_size=args.seq_len, tie_embeddings=args.tie_embeddings))
    models = {"ours": ours}
    if args.nanogpt:
        path = os.path.join(args.nanogpt, "model.py")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found; --nanogpt must be a folder holding nanoGPT's model.py")
        spec = importlib.util.spec_from_file_location("nanogpt_model", path)
        nano = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(nano)
        cfg = nano.GPTConfig(block_size=args.seq_len, vocab_size=args.vocab, n_layer=args.n_layer,
                             n_head=args.n_head, n_embd=args.n_embd, dropout=0.0, bias=False)  # its train.py's defaults
        models["nanoGPT"] = nano.GPT(cfg)
    out = {}
    for name, m in models.items():
        m.train()
        groups = [{"params": [p for p in m.parameters() if p.dim() >= 2], "weight_decay": 0.1},
                  {"params": [p for p in m.parameters() if p.dim() < 2], "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.95))          # as both train.py's on CPU
        out[name] = (m, opt, linear_flops_per_token(m, args.n_layer, args.n_embd, args.seq_len))
    return out


def step(model, opt, x, y):
    loss = model(x, y)[1]
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--nanogpt", default="", help="folder holding nanoGPT's model.py; without it only ours is timed")
    p.add_argument("--n_layer", type=int, default=6, help="layers")
    p.add_argument("--n_embd", type=int, default=384, help="hidden size")
    p.add_argument("--n_head", type=int, default=6, help="attention heads")
    p.add_argument("--vocab", type=int, default=16384, help="vocabulary rows")
    p.add_argument("--batch_size", type=int, default=16, help="sequences per step")
    p.add_argument("--seq_len", type=int, default=256, help="tokens per sequence")
    p.add_argument("--tie_embeddings", action="store_true", help="tie our head to the embedding, as nanoGPT does "
                   "(PanGu-π Pro unties them: a V x C matrix more for AdamW and a dense embedding gradient)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per run")
    p.add_argument("--rounds", type=int, default=5, help="interleaved runs of each model")
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    p.add_argument("--profile", action="store_true", help="print torch.profiler's top ops of one step of each model")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.nanogpt:
        print("train_bench.py: no --nanogpt=PATH given (a folder holding nanoGPT's model.py): timing ours only")
    models = build(args)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, args.vocab, (args.batch_size, args.seq_len), generator=g)
    y = torch.randint(0, args.vocab, (args.batch_size, args.seq_len), generator=g)
    tokens = args.batch_size * args.seq_len * args.steps
    for m, opt, _ in models.values():
        step(m, opt, x, y)                                               # warm-up: allocations, optimizer state

    if args.profile:
        from torch.profiler import profile, ProfilerActivity
        for name, (m, opt, _) in models.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step(m, opt, x, y)
            print(f"--- {name}: one step, top ops by self CPU time")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))

    rates = {(name, clock): [] for name in models for clock in ("wall", "cpu")}
    names = list(models)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:                # ABBA order: drift hits both
            m, opt, _ = models[name]
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(m, opt, x, y)
            rates[name, "wall"].append(tokens / (time.perf_counter() - t0))
            rates[name, "cpu"].append(tokens / (time.process_time() - c0))
    print(f"shape: {args.n_layer} layers x {args.n_embd}, {args.n_head} heads, vocab {args.vocab}, "
          f"batch {args.batch_size} x {args.seq_len}, fp32, {torch.get_num_threads()} threads, "
          f"{args.rounds} runs of {args.steps} steps each")
    med = {key: statistics.median(v) for key, v in rates.items()}
    for name, (m, _, flops) in models.items():
        n = sum(p.numel() for p in m.parameters())
        print(f"{name:>8}: {med[name, 'wall']:7.0f} tokens/s (min {min(rates[name, 'wall']):.0f}, max "
              f"{max(rates[name, 'wall']):.0f}), {med[name, 'cpu']:7.0f} tokens/CPU-s (min {min(rates[name, 'cpu']):.0f}, "
              f"max {max(rates[name, 'cpu']):.0f}); {n / 1e6:.2f}M params, {flops / 1e6:.1f} MFLOP/token")
    if "nanoGPT" in models:
        flop_ratio = models["ours"][2] / models["nanoGPT"][2]
        for clock, unit in (("wall", "tokens/s"), ("cpu", "tokens/CPU-s")):
            per_round = [a / b for a, b in zip(rates["ours", clock], rates["nanoGPT", clock])]
            ratio = med["ours", clock] / med["nanoGPT", clock]
            print(f"ours / nanoGPT, {unit}: {ratio:.3f}x (per-round {min(per_round):.3f}..{max(per_round):.3f}); "
                  f"per FLOP {ratio * flop_ratio:.3f}x (ours needs {flop_ratio:.3f}x the FLOPs per token)")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"train_bench.py: error: {e}")
