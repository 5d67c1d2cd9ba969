"""
reproduce.py — the paper's design formulas re-run at laptop scale, with a results page (docs/RESULTS.md).

    python reproduce.py                       # all six studies: about 2 hours on 2 CPU cores
    python reproduce.py --quick               # the same studies on a 1/8 budget, one seed: under 10 minutes
    python reproduce.py --only=rounds         # one study (tokenizer, architecture, inheritance, rounds, batch, together)

It drives the other scripts exactly as a user would (tokenizer_compress.py, data/prepare.py, train.py,
inherit.py, eval.py, each in its own process) on the children's corpus (../shared/data/corpora: 174 books to
train on, 10 held-out books for val bits-per-byte), or on the built-in Shakespeare when that is absent.
Every run lives in <work>/runs/NAME-sSEED: a finished run (result.json) is skipped and an interrupted one
resumes from its checkpoint, so the script can be stopped and started again at any time.

Scale: one model body (4 layers x 128, 4 heads, SwiGLU 8/3) at ~0.8M non-embedding parameters, 16 x 128
tokens per step, a few hundred steps. Every comparison is at equal steps (= equal tokens) unless a table
says otherwise. Seeds (the issue's rule): each study's reference runs 2 seeds, whose difference is the
seed spread; every variant within 2x that spread of the reference runs its second seed too; a cell with
two seeds shows their mean ± half their difference.
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(os.path.dirname(HERE), "shared", "data")
CHILDREN = [os.path.join(SHARED, "corpora", f"gutenberg_children_{s}.txt.gz") for s in ("train", "val")]
STUDIES = ("tokenizer", "architecture", "inheritance", "rounds", "batch", "together")
# shapes (n_layer, n_embd, n_head, ffn_ratio); FFN sizes round to 32. With the 8k vocabulary every shape
# below has ~2.9M parameters in all (vocabulary rows included, as the paper counts its 1B budget).
BASE = (4, 128, 4, 8 / 3)
SHAPES = {"shallow-wide 2x144": (2, 144, 4, 8 / 3), "base 4x128": BASE, "deep-thin 12x96": (12, 96, 3, 8 / 3),
          "deep-thin 16x96, FFN 1.5": (16, 96, 3, 1.5), "deep-thin 9x96, FFN 4": (9, 96, 3, 4.0)}
SOURCE = (12, 192, 6, 8 / 3)      # the larger model that inheritance starts from (trained here first)
STEPS, TOK_STEPS, SOURCE_STEPS = 100, 100, 200  # optimizer steps at --scale=1: most runs, tokenizer study, source
BATCH, SEQ = 16, 128


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1/8 of the steps and corpus, one seed (sets --scale and --seeds)")
    p.add_argument("--only", default="", help="comma-separated studies to run: " + ", ".join(STUDIES) + "; empty = all")
    p.add_argument("--scale", type=float, default=None, help="multiply every step count and corpus size (default 1, --quick 0.125)")
    p.add_argument("--seeds", type=int, default=None, help="1 or 2 seeds where a difference needs it (default 2, --quick 1)")
    p.add_argument("--seed", type=int, default=1337, help="first seed; the second is seed+1")
    p.add_argument("--work", default=None, help="runs, data and tokenizers (default out_reproduce, --quick out_reproduce_quick)")
    p.add_argument("--page", default=None, help="results page (default docs/RESULTS.md, --quick docs/RESULTS-quick.md)")
    p.add_argument("--corpus", default=None, help="train text instead of the children's corpus (val: 1 in 10 documents)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda, for train.py and eval.py")
    a = p.parse_args(argv)
    a.scale = a.scale if a.scale is not None else (0.125 if a.quick else 1.0)
    a.seeds = a.seeds if a.seeds is not None else (1 if a.quick else 2)
    a.work = a.work or os.path.join(HERE, "out_reproduce_quick" if a.quick else "out_reproduce")
    a.page = a.page or os.path.join(HERE, "docs", "RESULTS-quick.md" if a.quick else "RESULTS.md")
    a.only = [s for s in a.only.split(",") if s] or list(STUDIES)
    bad = [s for s in a.only if s not in STUDIES]
    if bad or not 0 < a.scale <= 4 or a.seeds not in (1, 2):
        p.error(f"--only takes {', '.join(STUDIES)}; --scale must be in (0, 4]; --seeds 1 or 2")
    if a.corpus and not os.path.exists(a.corpus):
        p.error(f"--corpus={a.corpus} does not exist")
    return a


A = None                                      # the parsed options, set by main()
steps = lambda n: max(2, round(n * A.scale))  # step counts at full scale -> this run's


def sh(args, log, check=True):
    """Run one of the project's scripts, output to `log`; on failure stop with its last lines (check) or
    return them."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        rc = subprocess.call([sys.executable] + args, cwd=HERE, stdout=f, stderr=subprocess.STDOUT)
    tail = " | ".join(open(log).read().strip().splitlines()[-2:]) if rc else ""
    if rc and check:
        sys.exit(f"reproduce.py: error: {args[0]} failed (exit {rc}): {tail} (log: {log})")
    return tail


# ---- data: a corpus slice, compact tokenizers, shards ----------------------------------------------------
def corpus(name, train_mb, val_mb):
    """work/corpus/NAME/{train,val}.txt: whole documents (the last one cut at a line) up to the sizes."""
    from data.corpus import iter_corpus, SEPARATOR
    d = os.path.join(A.work, "corpus", name)
    if os.path.exists(os.path.join(d, "val.txt")):
        return d
    os.makedirs(d, exist_ok=True)
    src = (A.corpus, None) if A.corpus else CHILDREN if all(map(os.path.exists, CHILDREN)) else (None, None)
    cap, n = {"train": int(train_mb * 1e6), "val": int(val_mb * 1e6)}, {"train": 0, "val": 0}
    files = {s: open(os.path.join(d, f"{s}.tmp"), "w", encoding="utf-8") for s in cap}
    for split, doc in iter_corpus(*src):
        if n[split] < cap[split]:
            doc = doc if len(doc) <= cap[split] - n[split] else doc[:doc.rfind("\n", 0, cap[split] - n[split]) + 1]
            files[split].write(doc + f"\n{SEPARATOR}\n")
            n[split] += len(doc.encode())
        if all(n[s] >= cap[s] for s in cap):
            break
    for s, f in files.items():
        f.close()
        os.replace(f.name, os.path.join(d, f"{s}.txt"))
    return d


def tokenizer(K, text):
    """A compact tokenizer of K tokens counted on `text` (tokenizer_compress.py); "full" = cl100k_base."""
    if K == "full":
        return "cl100k_base"
    out = os.path.join(A.work, "tok", f"{K}.json")
    args = ["tokenizer_compress.py", f"--input={text}", f"--out={out}", f"--out_dir={os.path.join(A.work, 'tok')}"]
    if not os.path.exists(out):      # a small text keeps fewer than K tokens alive: then all of them
        tail = sh(args + [f"--vocab={K}"], out[:-5] + ".log", check=False)
        alive = re.search(r"use --vocab=(\d+)", tail)
        if alive:
            sh(args + [f"--vocab={alive[1]}"], out[:-5] + ".log")
        elif tail:
            sys.exit(f"reproduce.py: error: tokenizer_compress.py failed: {tail} (log: {out[:-5]}.log)")
    return out


def shards(K, corpus_dir, name=None):
    """data/prepare.py of a corpus slice with the K tokenizer; returns the folder and its meta.json."""
    d = os.path.join(A.work, "data", name or K)
    if not os.path.exists(os.path.join(d, "meta.json")):
        main_text = os.path.join(A.work, "corpus", "main", "train.txt")
        sh(["data/prepare.py", f"--tokenizer={tokenizer(K, main_text)}", f"--input={corpus_dir}/train.txt",
            f"--val_input={corpus_dir}/val.txt", f"--out_dir={d}", "--overwrite"], d + ".log")
    return d, json.load(open(os.path.join(d, "meta.json")))


# ---- one training run: skipped when finished, resumed when interrupted -----------------------------------
def shape_opts(shape):
    L, C, H, r = shape
    return {"n_layer": L, "n_embd": C, "n_head": H, "ffn_ratio": r, "ffn_multiple": 32, "block_size": SEQ}


def train(name, n_steps, seed, data="8k", shape=BASE, init=None, fork=None, **opts):
    """train.py in its own process, with one progress bar read from its log.jsonl. Returns the result:
    the val curve [(step, train seconds, val loss, val bpb)], final bpb, tokens/s, parameters."""
    from tqdm import tqdm
    out = os.path.join(A.work, "runs", f"{name}-s{seed}")
    if os.path.exists(os.path.join(out, "result.json")):
        return json.load(open(os.path.join(out, "result.json")))
    if fork and not os.path.exists(os.path.join(out, "ckpt.pt")):       # start from a copy of another run
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(fork.format(seed=seed), out, ignore=shutil.ignore_patterns("result.json"))
    resume = os.path.exists(os.path.join(out, "ckpt.pt"))
    if not resume and os.path.exists(os.path.join(out, "log.jsonl")):   # stopped before its first checkpoint
        os.remove(os.path.join(out, "log.jsonl"))
    data_dir = data if os.path.isdir(data) else shards(data, os.path.join(A.work, "corpus", "main"))[0]
    args = {"data": data_dir, "out_dir": out, "max_iters": n_steps, "seed": seed, "batch_size": BATCH,
            "seq_len": SEQ, "warmup_iters": max(1, n_steps // 10), "eval_interval": max(1, n_steps // 10),
            "eval_iters": max(2, round(16 * min(1.0, 4 * A.scale))), "log_interval": max(1, n_steps // 20),
            "sample_tokens": 0, "device": A.device, "init_from": "resume" if resume else init or "scratch",
            **({} if init or fork else shape_opts(shape)), **opts}
    total = n_steps + (args.get("rounds", 1) - 1) * (args.get("refine_iters") or n_steps) if not args.get("halt_at") else n_steps
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, "log.jsonl")
    with open(os.path.join(out, "stdout.txt"), "a") as f, tqdm(total=total, desc=f"{name} s{seed}", dynamic_ncols=True) as bar:
        p = subprocess.Popen([sys.executable, "train.py"] + [f"--{k}={v}" for k, v in args.items()], cwd=HERE,
                             stdout=f, stderr=subprocess.STDOUT)
        while p.poll() is None:
            time.sleep(0.5)
            rows = read_log(log)
            bar.update(max([r["gstep"] for r in rows], default=0) - bar.n)
    if p.returncode:
        tail = open(os.path.join(out, "stdout.txt")).read().strip().splitlines()[-2:]
        sys.exit(f"reproduce.py: error: run {name} s{seed} failed (exit {p.returncode}): {' | '.join(tail)} "
                 f"(log: {out}/stdout.txt); re-run to resume it")
    return finish_run(out, args)


def read_log(path):
    """train.py's log rows, the last one of each (round, step, kind) (a resumed run repeats some), with the
    step counted over all rounds (gstep)."""
    if not os.path.exists(path):
        return []
    rows = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            rows[(r["round"], r["step"], "val_loss" in r)] = r
    ends = {}                                              # last step of each round
    for (rd, st, _) in rows:
        ends[rd] = max(ends.get(rd, 0), st)
    for (rd, st, _), r in rows.items():
        r["gstep"] = st + sum(ends.get(k, 0) for k in range(1, rd))
    return sorted(rows.values(), key=lambda r: (r["gstep"], "val_loss" in r))


def finish_run(out, args):
    from model import load_model
    rows, t, last, curve = read_log(os.path.join(out, "log.jsonl")), 0.0, 0, []
    for r in rows:                                         # train seconds from each log row's tokens/s
        if "tok_per_s" in r:
            t, last = t + (r["gstep"] - last) * args["batch_size"] * args["seq_len"] / r["tok_per_s"], r["gstep"]
        else:
            curve.append((r["gstep"], t, r["val_loss"], r["val_bpb"]))
    model, _ = load_model(os.path.join(out, "ckpt.pt"))
    res = {"curve": curve, "final_loss": curve[-1][2], "bpb": curve[-1][3], "seconds": t,
           "tok_s": float(np.median([r["tok_per_s"] for r in rows if "tok_per_s" in r])),
           "params": model.param_count(), "out": out}
    json.dump(res, open(os.path.join(out, "result.json"), "w"))
    return res


class Variant:
    """One configuration of a study, trained with one seed or, where a difference needs it, two."""
    def __init__(self, label, name, n_steps, **spec):
        self.label, self.name, self.n_steps, self.spec, self.res = label, name, n_steps, spec, []

    def seeds(self, n):
        while len(self.res) < min(n, A.seeds):
            self.res.append(train(self.name, self.n_steps, A.seed + len(self.res), **self.spec))
        return self

    def get(self, key):
        return float(np.mean([r[key] for r in self.res]))

    bpb = property(lambda self: self.get("bpb"))
    spread = property(lambda self: abs(self.res[0]["bpb"] - self.res[1]["bpb"]) if len(self.res) > 1 else None)
    cell = property(lambda self: f"{self.bpb:.3f}" + (f" ± {self.spread / 2:.3f}" if self.spread is not None else ""))


def settle(variants, ref):
    """The seed rule: ref runs 2 seeds; a variant within 2x their spread of ref runs its second seed too."""
    for v in variants:
        v.seeds(1)
    ref.seeds(2)
    if ref.spread is not None:
        for v in variants:
            if abs(v.bpb - ref.bpb) < 2 * ref.spread:
                v.seeds(2)
    return ref.spread


def verdict(diff, spread, holds, fails):
    """One line: lower is better, diff = claimed-better minus other, in bits per byte."""
    if spread is not None and abs(diff) < 2 * spread:
        return f"**Inconclusive at this scale**: the difference ({diff:+.3f} bpb) is within 2x the seed spread ({spread:.3f})."
    seeds = f", seed spread {spread:.3f}" if spread is not None else ", one seed"
    return f"**Reproduces** ({diff:+.3f} bpb{seeds}): {holds}" if diff < 0 else \
        f"**Does not reproduce** ({diff:+.3f} bpb{seeds}): {fails}"


def plot(fname, xlabel, ylabel, series, bars=None):
    """A PNG beside the page: series {label: (xs, ys)} as lines, or bars {label: ys} over the names bars['_x'].
    Returns the Markdown image line, or a note when matplotlib (optional) is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "_(no plot: matplotlib is not installed; `pip install matplotlib` adds the plots)_"
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, (x, y) in (series or {}).items():
        ax.plot(x, y, "o-", ms=3, label=label)
    if bars:
        names = bars.pop("_x")
        w = 0.8 / len(bars)
        for i, (label, ys) in enumerate(bars.items()):
            ax.bar(np.arange(len(names)) + i * w, ys, w, label=label)
        ax.set_xticks(np.arange(len(names)) + 0.4 - w / 2, names, rotation=30, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    d = os.path.join(os.path.dirname(os.path.abspath(A.page)), "results")
    os.makedirs(d, exist_ok=True)
    fig.savefig(os.path.join(d, fname), dpi=110)
    plt.close(fig)
    return f"![{fname}](results/{fname})"


def table(header, rows):
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
                     ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


curves = lambda vs, x=0: {v.label: ([c[x] for c in v.res[0]["curve"]], [c[3] for c in v.res[0]["curve"]]) for v in vs}
M = lambda n: f"{n / 1e6:.2f}M"


# ---- the studies: each returns its section of the page ---------------------------------------------------
def study_tokenizer():
    n = steps(TOK_STEPS)
    metas = {K: shards(K, os.path.join(A.work, "corpus", "main"))[1] for K in ("4k", "8k", "16k", "32k", "full")}
    from model import padded_vocab
    L, C, _, _ = BASE
    per_layer = 4 * C * C + 3 * C * 32 * math.ceil(8 / 3 * C / 32)
    rows16, rows8 = (padded_vocab(metas[K]["tokenizer"]["n_vocab"]) for K in ("16k", "8k"))
    deep = L + round(2 * C * (rows16 - rows8) / per_layer)      # 16k's extra embedding + head rows, as layers
    vs = [Variant(K, f"tok-{K}", n, data=K) for K in metas]
    vs.append(Variant(f"8k, {deep} layers", f"tok-8k-deep{deep}", n, data="8k", shape=(deep,) + BASE[1:]))
    spread = settle(vs, vs[1])
    T = min(v.get("seconds") for v in vs)                       # equal wall-clock: the fastest run's end
    at_T = lambda v: np.mean([np.interp(T, [c[1] for c in r["curve"]], [c[3] for c in r["curve"]])
                              if r["curve"][0][1] <= T else np.nan for r in v.res])
    rows = []
    for v in vs:
        m = metas[v.spec["data"]]
        tpb = m["splits"]["train"]["tokens"] / m["splits"]["train"]["bytes"]
        p = v.res[0]["params"]
        rows.append([v.label, f"{m['tokenizer']['n_vocab']:,}", M(p["total"]), M(p["rest"]),
                     f"{m['splits']['val']['tokens'] / m['splits']['val']['bytes']:.4f}", f"{v.get('tok_s') / tpb:,.0f}",
                     v.cell, "not evaluated yet" if np.isnan(at_T(v)) else f"{at_T(v):.3f}"])
    full, compact = vs[4], min(vs[:4], key=lambda v: v.bpb)
    return "\n\n".join([
        "## 1. Compact tokenizer (§3.1)",
        "**Paper.** A tiny model spends a large share of its parameters on the vocabulary (about 38% at 100k "
        "tokens for 1B, 18% at 48k [reported]); keeping the most frequent tokens frees them, and 48k of ~100k was "
        "best at 1B [reported] (`../shared/PAPER.md` §1).",
        f"**Here.** The same body ({L} layers x {C}) with compact tokenizers counted on the training text "
        f"(`tokenizer_compress.py`, merge closure on) and the full cl100k_base vocabulary; {n} steps of "
        f"{BATCH}x{SEQ} tokens each (equal tokens). *Equal wall-clock* reads each run's val curve at the "
        f"fastest run's training time ({T:.0f} s of training, evaluations excluded). The last row spends the "
        f"16k model's extra embedding and head rows on {deep - L} more layers of the 8k model.",
        table(["tokenizer", "ids", "params", "non-embedding", "val tokens/byte", "train bytes/s",
               "val bpb, equal tokens", f"val bpb at {T:.0f} s"], rows),
        plot("tokenizer.png", "training seconds", "val bits per byte", curves(vs, x=1)),
        "**Verdict.** " + verdict(compact.bpb - full.bpb, spread, f"the best compact vocabulary ({compact.label}) beats "
                                  "the full one at equal tokens, and trains several times faster per byte.",
                                  "the full vocabulary is better at equal tokens here.") + " Depth: " +
        verdict(vs[5].bpb - vs[2].bpb, spread, f"spending 16k's vocabulary parameters on depth ({vs[5].label}) beats "
                                               "the 16k model.", "the extra layers do not beat the 16k vocabulary at equal tokens."),
    ])


def study_architecture():
    import torch
    from model import load_model
    vs = [Variant(k, "base" if s == BASE else "arch-" + k.split()[0] + "-" + "x".join(map(str, s[:2])) + f"-r{s[3]:.2f}",
                  steps(STEPS), shape=s) for k, s in SHAPES.items()]
    spread = settle(vs, vs[1])
    rows, ms = [], {}
    for v in vs:
        model, _ = load_model(os.path.join(v.res[0]["out"], "ckpt.pt"), "cuda" if A.device == "cuda" else "cpu")
        idx = torch.zeros((1, 1), dtype=torch.long, device=next(model.parameters()).device)
        best = math.inf
        for _ in range(3):                             # generation latency: best of 3, greedy, KV cache
            t0 = time.perf_counter()
            model.generate(idx, SEQ - 1, temperature=0)
            best = min(best, time.perf_counter() - t0)
        ms[v.label] = 1000 * best / (SEQ - 1)
        L, C, H, r = SHAPES[v.label]
        p = v.res[0]["params"]
        rows.append([v.label, L, C, H, f"{r:.2f}", M(p["total"]), M(p["rest"]), v.cell,
                     f"{v.get('tok_s'):,.0f}", f"{ms[v.label]:.2f}"])
    deep, base = vs[2], vs[1]
    return "\n\n".join([
        "## 2. Architecture tweak (§3.2)",
        "**Paper.** At a fixed parameter budget depth matters most: deeper models score higher but generate "
        "more slowly [paper]; about 20 layers with an FFN ratio near 2.7-2.8 balance the two [reported] "
        "(`../shared/PAPER.md` §2).",
        f"**Here.** Five shapes of ~2.9M parameters in all (the 8k vocabulary's rows included, as the paper "
        f"counts its budget), {steps(STEPS)} steps each. Latency: greedy generation of {SEQ - 1} tokens from one, "
        "batch 1, with the KV cache; best of 3.",
        table(["shape", "layers", "width", "heads", "FFN ratio", "params", "non-embedding", "val bpb",
               "train tokens/s", "ms/token"], rows),
        plot("architecture.png", "ms per generated token (KV cache)", "val bits per byte",
             {v.label: ([ms[v.label]], [v.bpb]) for v in vs}),
        "**Verdict.** " + verdict(deep.bpb - base.bpb, spread, f"the deep-thin 12-layer model beats the 4-layer base, and "
                                  f"costs {ms[deep.label] / ms[base.label]:.1f}x its generation time per token.",
                                  f"the 4-layer base is better at this budget and length of training; the 12-layer "
                                  f"model also costs {ms[deep.label] / ms[base.label]:.1f}x its generation time per token."),
    ])


def source_ckpt():
    return os.path.join(train("inh-source", steps(SOURCE_STEPS), A.seed, shape=SOURCE)["out"], "ckpt.pt")


def inherit(name, shape, layers, width):
    """inherit.py: a student of `shape` from the source model; returns the student checkpoint."""
    out = os.path.join(A.work, "inherit", f"{name}.pt")
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        L, C, H, r = shape
        sh(["inherit.py", f"--src={source_ckpt()}", f"--out={out}", f"--calib={shards('8k', os.path.join(A.work, 'corpus', 'main'))[0]}",
            f"--n_layer={L}", f"--n_embd={C}", f"--n_head={H}", f"--ffn_ratio={r}", f"--layers={layers}",
            f"--width={width}", f"--seed={A.seed}", f"--seq_len={SEQ}", f"--batch_size={BATCH}", "--eval_batches=2",
            f"--calib_batches={max(2, steps(8))}", f"--mask_steps={steps(60)}"], out[:-3] + ".log")
    return out


def study_inheritance():
    n = steps(STEPS)
    grid = [(s, "taylor") for s in ("first", "last", "uniform", "edges", "importance")] + \
           [("edges", w) for w in ("random", "l1", "l2", "activation", "learnable")]
    rand = Variant("random init", "base", n)
    vs = [rand] + [Variant(f"{s}, {w}", f"inh-{s}-{w}", n, init=inherit(f"{s}-{w}", BASE, s, w)) for s, w in grid]
    spread = settle(vs, rand)
    target = rand.get("final_loss")
    rows = []
    for v in vs:
        reach = next((c[0] for c in v.res[0]["curve"] if c[2] <= target), None)
        rows.append([v.label, v.cell, "–" if v is rand else f"{reach} ({reach / n:.0%})" if reach else f"not in {n}"])
    best = min(vs[1:], key=lambda v: v.bpb)
    spread_of = lambda group: max(v.bpb for v in group) - min(v.bpb for v in group)
    order = lambda group, k: " < ".join(v.label.split(", ")[k] for v in sorted(group, key=lambda v: v.bpb))
    return "\n\n".join([
        "## 3. Parameter inheritance (§3.3)",
        "**Paper.** Initialising the tiny model from a larger trained one converges faster and ends higher: the "
        "largest single gain [paper]. The first and last layers matter more than the middle ones [paper]; among "
        "width criteria learnable > Taylor > L2 > L1 > random init [reported] (`../shared/PAPER.md` §3).",
        f"**Here.** The source is a {SOURCE[0]}x{SOURCE[1]} model trained here first ({steps(SOURCE_STEPS)} steps; its "
        f"training is not counted). Students have the base shape ({BASE[0]}x{BASE[1]}), made by `inherit.py` with "
        f"each layer strategy (width by Taylor) and each width metric (layers by `edges`), then trained {n} steps "
        "like the random-init model. *Steps to match* is the first evaluation at which the student's val loss is "
        "at or below the random-init model's final val loss.",
        table(["student (layers, width)", f"val bpb after {n} steps", "steps to match random init"], rows),
        plot("inheritance.png", "step", "val bits per byte", curves([rand, vs[4], vs[5], best] if best not in (vs[4], vs[5]) else [rand, vs[4], vs[5]])),
        "**Verdict.** " + verdict(vs[4].bpb - rand.bpb, spread, "inherited students (edges, taylor) beat random init "
                                  "at equal steps.", "random init is as good here.") +
        f" Layer strategies, best first: {order(vs[1:6], 0)}; width metrics: {order(vs[6:] + [vs[4]], 1)} "
        "(the paper: learnable < taylor < l2 < l1 < random)" + (
            f"; but all students lie within {spread_of(vs[1:]):.3f} bpb of each other, under 2x the seed spread: "
            "at this scale these orders are noise, not rankings." if spread and spread_of(vs[1:]) < 2 * spread else "."),
    ])


def batch_losses(out, data_dir, seed):
    """Mean loss of every training batch (train.py's packing: same seed, batch and length) under a run's model."""
    import torch
    from model import load_model
    from data.batches import Batches
    model, _ = load_model(os.path.join(out, "ckpt.pt"))
    b = Batches(os.path.join(data_dir, "train.bin"), json.load(open(os.path.join(data_dir, "meta.json")))["dtype"],
                SEQ, BATCH, seed)
    with torch.no_grad():
        return np.array([model(*b.rows(i))[1].item() for i in range(b.n)])


def study_rounds():
    small = corpus("small", max(0.05, 0.35 * A.scale), 1.5 * A.scale)
    d, meta = shards("8k", small, name="small")
    nb = (meta["splits"]["train"]["tokens"] - 1) // SEQ // BATCH
    r1 = 4 * nb                                        # round 1: four epochs of the small corpus
    for s in range(A.seeds):
        train("rounds-r1", r1, A.seed + s, data=d, rounds=2, halt_at=r1, refine_iters=nb)
    fork = os.path.join(A.work, "runs", "rounds-r1-s{seed}")
    opts = dict(data=d, rounds=2, refine_iters=nb, fork=fork)
    vs = [Variant("softmax 50% (paper)", "rounds-softmax", r1, refine="softmax", sampling_rate=0.5, **opts),
          Variant("uniform 50%", "rounds-uniform", r1, refine="uniform", sampling_rate=0.5, **opts),
          Variant("all data", "rounds-all", r1, refine="uniform", sampling_rate=1.0, **opts)]
    spread = settle(vs, vs[2])
    sm = vs[0].res[0]["out"]                           # the softmax draw splits the batches: kept / dropped
    kept = np.zeros(nb, bool)
    kept[np.load(os.path.join(sm, "round2_selection.npy"))] = True
    before = np.load(os.path.join(sm, "round2_batch_losses.npy"))
    r1_bpb = train("rounds-r1", r1, A.seed, data=d, rounds=2, halt_at=r1, refine_iters=nb)["bpb"]
    rows, bars = [["end of round 1", "–", f"{r1_bpb:.3f}", f"{before[kept].mean():.3f}", f"{before[~kept].mean():.3f}"]], \
        {"_x": ["end of round 1"] + [v.label for v in vs], "kept by softmax": [before[kept].mean()],
         "dropped by softmax": [before[~kept].mean()]}
    for v in vs:
        after = batch_losses(v.res[0]["out"], d, A.seed)
        rows.append([v.label, f"{int(v.spec['sampling_rate'] * nb)} batches", v.cell,
                     f"{after[kept].mean():.3f}", f"{after[~kept].mean():.3f}"])
        bars["kept by softmax"].append(after[kept].mean())
        bars["dropped by softmax"].append(after[~kept].mean())
    soft, all_ = vs[0], vs[2]
    return "\n\n".join([
        "## 4. Multiple-round training (§5)",
        "**Paper.** Tiny models forget; a second round on the batches the model finds hardest (drawn with "
        "p = softmax(loss), 50% of them) helps, and a third adds nothing [paper, reported] (`../shared/PAPER.md` §5).",
        f"**Here.** Round 1 trains {r1} steps: four epochs of a small slice of the corpus ({nb} batches of "
        f"{BATCH}x{SEQ}), so that every batch has been seen and forgetting is possible. Round 2 then trains "
        f"{nb} more steps (a fresh schedule, equal for all) on the softmax-drawn 50%, a uniform 50% (the "
        "control: as much repetition, no preference), or all batches. Train losses are the mean over the "
        "batches the softmax draw kept and dropped (the same split for every row).",
        table(["round 2 on", "data", "val bpb", "train loss, kept", "train loss, dropped"], rows),
        plot("rounds.png", "", "train loss (nats/token)", None, bars=bars),
        "**Verdict.** " + verdict(soft.bpb - all_.bpb, spread, "round 2 on the softmax-refined half beats continuing "
                                  "on all data at equal steps.", "continuing on all data is as good or better: at this "
                                  "scale refining mostly trades loss on the dropped batches for loss on the kept ones."),
    ])


def study_batch():
    n, vs = steps(STEPS), {}
    for bs in (4, 16, 64):
        for rule, r in (("fixed lr", 0), ("lr ∝ batch^0.5", 0.5)):
            vs[bs, rule] = vs[bs, "fixed lr"] if bs == 16 and r else Variant(
                f"{bs}, {rule}", "base" if bs == 16 else f"batch{bs}-r{r}", max(2, n * 16 // bs),
                batch_size=bs, **({} if bs == 16 else {"lr_scaling_r": r, "base_batch_tokens": 16 * SEQ}))
    uniq = list(dict.fromkeys(vs.values()))
    spread = settle(uniq, vs[16, "fixed lr"])
    rows = [[bs * SEQ, vs[bs, "fixed lr"].n_steps] + [f"{3e-3 * (bs / 16) ** r:.2g}: {vs[bs, rule].cell}"
            for rule, r in (("fixed lr", 0), ("lr ∝ batch^0.5", 0.5))] for bs in (4, 16, 64)]
    gain = np.mean([vs[bs, "lr ∝ batch^0.5"].bpb - vs[bs, "fixed lr"].bpb for bs in (4, 64)])
    return "\n\n".join([
        "## 5. Batch size and learning rate (§4)",
        "**Paper.** Tiny models prefer batches below about 4M tokens, and the learning rate should follow the "
        "batch as lr = lr0 (bs / bs0)^0.5 [reported] (`../shared/PAPER.md` §4; `batch_lr()` in `train.py`).",
        f"**Here.** Batches of 4, 16 and 64 sequences of {SEQ} at equal tokens ({n * BATCH * SEQ:,}); lr0 = 3e-3 "
        "tuned at 16. Cells: peak lr: val bpb.",
        table(["tokens per step", "steps", "fixed lr", "lr ∝ batch^0.5"], rows),
        plot("batch.png", "tokens per step", "val bits per byte",
             {rule: ([bs * SEQ for bs in (4, 16, 64)], [vs[bs, rule].bpb for bs in (4, 16, 64)])
              for rule in ("fixed lr", "lr ∝ batch^0.5")}),
        "**Verdict.** " + verdict(gain, spread, "scaling the lr with the square root of the batch helps away from the "
                                  "batch it was tuned at (mean over 4 and 64).", "the square-root rule does not help "
                                  "here (mean over batches 4 and 64)."),
    ])


def zero_shot(out, limit):
    """eval.py on the benchmark files present; {} when there are none."""
    path = os.path.join(out, "eval.json")
    if not os.path.isdir(os.path.join(SHARED, "eval")):
        return {}
    if not os.path.exists(path):
        sh(["eval.py", f"--ckpt={out}/ckpt.pt", "--tasks=all", f"--limit={limit}", f"--out={path}",
            f"--device={A.device}"], os.path.join(out, "eval.log"))
    return json.load(open(path))["tasks"]


def study_together():
    n = steps(TOK_STEPS)
    deep = SHAPES["deep-thin 12x96"]
    base = Variant("baseline: full vocabulary, 4x128, random init, one round", "tok-full", n, data="full")
    pro = Variant("Pro: 8k vocabulary, 12x96, inherited, two rounds", "pro", n // 2, rounds=2,
                  init=inherit("pro-uniform-taylor", deep, "uniform", "taylor"))
    spread = settle([base, pro], pro)
    limit = max(5, round(100 * A.scale))
    ev = {v: zero_shot(v.res[0]["out"], limit) for v in (base, pro)}
    rows = [["val bits per byte", "–", base.cell, pro.cell]]
    above = 0
    for t in ev[base]:
        b, p = ev[base][t], ev[pro].get(t, {})
        rows.append([f"{t} acc (n={b['n']})", f"{b['chance']:.3f}"] +
                    [f"{r['acc']:.3f} ± {r['acc_stderr']:.3f}" if r else "–" for r in (b, p)])
        above += sum(r and r["acc"] - r["chance"] > 2 * r["acc_stderr"] for r in (b, p))
    bars = {"_x": list(ev[base]), "chance": [ev[base][t]["chance"] for t in ev[base]],
            "baseline": [ev[base][t]["acc"] for t in ev[base]], "Pro": [ev[pro][t]["acc"] for t in ev[base]]}
    return "\n\n".join([
        "## 6. All together: baseline vs Pro",
        "**Paper.** Each technique adds to the next: PanGu-π-1B 42.41 -> Pro 51.28 average over 10 benchmarks "
        "[code, Fig. 1] (`../shared/PAPER.md`, headline).",
        f"**Here.** Both train {n} steps of {BATCH}x{SEQ}: the baseline in one round, Pro in two rounds of {n // 2} "
        "(the second on the softmax-refined half), starting from `inherit.py` (all 12 layers of the source, "
        "width by Taylor). The source model's training is not counted, as in the paper. Zero-shot accuracy "
        f"(`eval.py`, first {limit} items per task; ± one standard error) beside chance.",
        table(["measure", "chance", "baseline", "Pro"], rows),
        plot("together.png", "", "accuracy", None, bars=bars) if ev[base] else
        "_(no benchmark files in ../shared/data/eval: zero-shot accuracy not measured)_",
        "**Verdict.** " + verdict(pro.bpb - base.bpb, spread, "the Pro recipe beats the baseline at equal steps.",
                                  "the baseline is as good or better here.") +
        (f" Benchmarks: {above} of {2 * len(ev[base])} scores are more than 2 standard errors above chance; at this "
         "scale the rest is noise around chance, not a ranking." if ev[base] else ""),
    ])


def git_commit():
    """The commit of the code that runs (read at the start: the page must not name a later one)."""
    git = lambda *a: subprocess.run(["git"] + list(a), cwd=HERE, capture_output=True, text=True).stdout.strip()
    return (git("rev-parse", "--short", "HEAD") or "?") + \
        (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def header(t0, commit):
    import torch
    dev = torch.cuda.get_device_name() if A.device != "cpu" and torch.cuda.is_available() else \
        f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    src = A.corpus or ("children's corpus (../shared/data/corpora)" if all(map(os.path.exists, CHILDREN)) else "built-in Shakespeare")
    return "\n".join([
        "# nanopangu: the paper's findings at laptop scale", "",
        f"Written by `python {' '.join(['reproduce.py'] + sys.argv[1:])}` on {datetime.date.today()}, "
        f"git commit {commit}. Machine: {platform.platform()}, {dev}, "
        f"torch {torch.__version__}. Corpus: {src}. Seeds {A.seed}" + (f" and {A.seed + 1}" if A.seeds > 1 else "") +
        f"; scale {A.scale:g}; this invocation took {(time.time() - t0) / 60:.0f} min (runs finished earlier are "
        "reused, not re-timed). Every number below comes from the runs this command made.", "",
        "Bits per byte (bpb) are on held-out text and comparable across tokenizers; lower is better. A model here "
        "has ~3M parameters and sees under a million tokens: a finding that holds at 1B may not hold at this scale, "
        "and the verdicts say so plainly.", ""])


def main(argv=None):
    global A
    A = parse_args(argv)
    t0, commit = time.time(), git_commit()
    os.makedirs(A.work, exist_ok=True)
    corpus("main", 12 * A.scale, 1.5 * A.scale)
    sections = []
    for s in A.only:
        sections.append(globals()["study_" + s]())
        os.makedirs(os.path.dirname(os.path.abspath(A.page)), exist_ok=True)
        with open(A.page, "w") as f:                       # after each study: a partial page survives a stop
            f.write(header(t0, commit) + "\n" + "\n\n".join(sections) + "\n")
        print(f"wrote {A.page} ({s})")


if __name__ == "__main__":
    main()
