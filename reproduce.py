"""reproduce.py — the paper's design formulas re-run at laptop scale, with a page (docs/RESULTS.md).

    python reproduce.py                  # all six studies (README: how long it took on 2 CPU cores)
    python reproduce.py --quick          # 1/10 budget, one seed, one lr
    python reproduce.py --only=rounds    # one study, on its own page docs/RESULTS-only-rounds.md

It runs the other scripts as a user would, each in its own process (forked: forks.py), --jobs
runs at a time on cores/jobs threads each (tiny models use two cores better as two runs than as
one); what runs alone (a tokenizer, the inheritance source, a lone run) gets every core. A
finished run (<work>/runs/NAME-sSEED) is reused and an interrupted one resumes: stop, restart.

How a verdict is reached (the statistics, in four rules):
1. Every run is scored on the SAME held-out text (<work>/heldout.txt, 256 KB of held-out books at
   full scale; study 4: its three domains' held-out ends, 3 x 85 KB) by `eval.py --bpb`, so that a
   difference between runs is the models', not the text's.
2. Run-to-run noise σ is pooled over every configuration run with n_i >= 2 seeds:
   σ² = Σ_i Σ_s (x_is - mean_i)² / Σ_i (n_i - 1); the page prints σ with its degrees of freedom.
3. Two arms are compared by PAIRED differences d_s = arm1(seed s) - arm2(seed s): a seed means the
   same data order, so what both runs share cancels. Δ = mean d; SE(Δ) = sd(d)/√n with n >= 3
   seeds, else √(2σ²/n) from the pooled σ (ignores the pairing's gain: conservative).
4. A verdict needs |Δ| > 2 SE. With SE ≈ √(2σ²/n) that takes n > 8σ²/Δ² seeds per arm, so an arm
   gets more seeds (up to --max_seeds) while the rule asks for them; else it is "Inconclusive".
"""
import argparse, json, math, os, pathlib, platform, re, shutil, subprocess, sys, threading, time, timeit
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import numpy as np

from forks import Forks

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(os.path.dirname(HERE), "shared", "data")
CHILDREN = [f"{SHARED}/corpora/gutenberg_children_{split}.txt.gz" for split in ("train", "val")]
SHAKESPEARE = f"{SHARED}/corpora/tinyshakespeare_input.txt"
CHINESE = f"{SHARED}/corpora/zh_classic_novels.txt.gz"
STUDIES = {"tokenizer": "Compact tokenizer", "architecture": "Architecture tweak",
           "inheritance": "Parameter inheritance", "rounds": "Multiple-round training",
           "batch": "Batch size and learning rate", "together": "All together: baseline vs Pro"}
STEPS, SOURCE_STEPS = 100, 200    # optimizer steps at --scale=1: every run; the inheritance source
BATCH, SEQ, LR = 16, 128, 3e-3    # 16 x 128 tokens a step; train.py's default peak lr, tuned at 16
HELDOUT_BYTES = 256_000           # rule 1's fixed held-out text at --scale=1 (>= 250 KB)
# The studies' grids (the toy test shrinks them). Shapes (n_layer, n_embd, n_head, ffn_ratio): FFN a
# multiple of 32, ~2.9M parameters each with the 8k vocabulary (its rows counted, as the paper's 1B)
VOCABS = ("1k", "2k", "4k", "8k")                       # 1: compact vocabularies (and the full one)
# 1 and 6's baseline: cl100k, slow; evaluated each n/20 steps for an early equal-time point
FULL = lambda n: dict(data="full", eval_interval=max(3, n // 20))
BASE, DEEP = (4, 128, 4, 8 / 3), (12, 96, 3, 8 / 3)
SHAPES = {"shallow-wide 2x144": (2, 144, 4, 8 / 3), "base 4x128": BASE, "deep-thin 12x96": DEEP,
          "deep-thin 16x96, FFN 1.5": (16, 96, 3, 1.5), "deep-thin 9x96, FFN 4": (9, 96, 3, 4.0)}
LR_SWEEP = (0.5, 1, 2)                                  # 2: each shape's lr, as multiples of LR
SOURCE = (12, 192, 6, 8 / 3)                            # 3: the model inheritance starts from
LAYERS = ("first", "last", "uniform", "importance")     # 3: layer strategies beside `edges`
WIDTHS = ("random", "l1", "l2", "activation", "learnable")   # 3: width metrics beside `taylor`
ROUND2 = {"softmax, T = 0.1": ("softmax", 0.1, 0.5), "top-k hardest": ("topk", 1.0, 0.5),
          "uniform 50%": ("uniform", 1.0, 0.5)}         # 4: besides the paper's draw and all data
# 4: batches of ROUNDS_BATCH x SEQ; train text per domain, MB at most (Chinese: ~1 byte a token, not
# ~4): ~200 batches each, ~600 in all. Domains: children's books, Shakespeare, Chinese novels
# (../shared); else Shakespeare's works by kind ("plays": the rest)
ROUNDS_BATCH, DOMAIN_MB = 8, (0.9, 0.5, 0.25)
KINDS = {"histories": ("henry", "richard", "john"),
         "poems": ("sonnets", "lovers", "passionate", "phoenix", "rape")}
BATCHES, POWERS = (8, 64), (0, 0.5, 1)                  # 5: batch sizes and r of lr ∝ batch^r


def parse_args(argv):
    quick = "--quick" in argv                  # --quick sets other defaults, which --help shows
    p = argparse.ArgumentParser(prog="reproduce.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1/10 of steps and corpus, one seed, one lr")
    p.add_argument("--only", default="", help=f"comma-separated of {', '.join(STUDIES)}; '' = all")
    p.add_argument("--scale", type=float, default=0.1 if quick else 1, help="x steps and corpora")
    p.add_argument("--seeds", type=int, default=1 if quick else 2, help="seeds of a verdict's arms")
    p.add_argument("--max_seeds", type=int, help="cap on the 8σ²/Δ² rule's seeds; None: 3, quick 1")
    p.add_argument("--seed", type=int, default=1337, help="first seed; the others count up from it")
    p.add_argument("--work", help="runs, data, tokenizers; None: out_reproduce[_quick]")
    p.add_argument("--page", help="results page; None: docs/RESULTS[-quick][-only-STUDY].md")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda, for train.py and eval.py")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, on cores/jobs threads each (GPU: 1)")
    o = p.parse_args(argv)
    o.max_seeds = o.max_seeds if o.max_seeds is not None else max(o.seeds, 1 if quick else 3)
    only = [s for s in o.only.split(",") if s]
    errors = [f"--only: unknown study {s!r} (choose from {', '.join(STUDIES)})" for s in only
              if s not in STUDIES] + ["--scale must be in (0, 4]"] * (not 0 < o.scale <= 4)
    errors += [f"--seeds must be in 1..--max_seeds ({o.max_seeds})"] * (not 0 < o.seeds <= o.max_seeds) + \
        ["--jobs must be >= 1"] * (o.jobs < 1)
    if errors:                                   # one line per bad option, all at once
        p.error("\nreproduce.py: error: ".join(errors))
    o.only = [s for s in STUDIES if s in only] or list(STUDIES)
    o.work = o.work or os.path.join(HERE, "out_reproduce_quick" if o.quick else "out_reproduce")
    part = "-only-" + "-".join(o.only) if len(o.only) < len(STUDIES) else ""
    o.page = o.page or os.path.join(HERE, "docs", f"RESULTS{'-quick' * o.quick}{part}.md")
    return o


OPTS = POOL = None     # the parsed options, and --jobs worker threads for training runs: set by main()
FORKS, LOCKS = [], {}  # idle script servers (sh() starts one a job); a run folder's lock (train())
steps = lambda n: max(2, round(n * OPTS.scale))    # a step count at full scale -> this run's
sweep_lrs = lambda: (1,) if OPTS.quick else LR_SWEEP   # --quick: every shape at LR (10 runs fewer)
children = lambda: all(map(os.path.exists, CHILDREN))      # the children's corpus, else Shakespeare
fail = lambda msg: sys.exit(f"reproduce.py: error: {msg}")  # one line, exit code 1
heldout_bpb = lambda ckpt, report: evaluate(ckpt, report, f"--bpb={heldout()}")["bpb"]["bpb"]  # rule 1
REPEATS = {}          # run name -> {seed: held-out bpb} of every configuration (rule 2's pool)
# a Markdown table; plot() series: first-seed val bpb per variant by tokens (x=0) or seconds (x=1)
table = lambda head, rows: "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                                     ["| " + " | ".join(map(str, r)) + " |" for r in rows])
curves = lambda variants, x: {v.label: ([c[x] for c in v.res[0]["curve"]],
                                        [c[2] for c in v.res[0]["curve"]]) for v in variants}


def sh(args, log, check=True):
    """Run one of the project's scripts (forked: forks.py), its output appended to `log`. On
    failure: stop with its last two lines (check), or return them ("" on success)."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    alone = threading.current_thread() is threading.main_thread()    # else one of --jobs workers
    threads = None if alone or OPTS.jobs == 1 else max(1, os.cpu_count() // OPTS.jobs)  # cores/jobs
    forks = FORKS.pop() if FORKS else Forks(HERE)                  # a script server a job
    try:
        rc = forks(args, log, threads=threads)
    finally:
        FORKS.append(forks)
    tail = " | ".join(open(log).read().strip().splitlines()[-2:]) if rc else ""
    if rc and check:
        fail(f"{args[0]} failed (exit {rc}): {tail} (log: {log}); re-run to resume")
    return tail


# ---- data: a corpus slice, the fixed held-out text, compact tokenizers, shards ------------------
def corpus(name, train_mb, val_mb):
    """work/corpus/NAME/{train,val}.txt: whole documents (the last cut at a line) up to sizes."""
    from data.corpus import iter_corpus, SEPARATOR
    folder = os.path.join(OPTS.work, "corpus", name)
    if not os.path.exists(f"{folder}/val.txt"):
        os.makedirs(folder, exist_ok=True)
        cap, size = {"train": int(train_mb * 1e6), "val": int(val_mb * 1e6)}, {"train": 0, "val": 0}
        files = {s: open(f"{folder}/{s}.tmp", "w", encoding="utf-8") for s in cap}
        for split, doc in iter_corpus(*(CHILDREN if children() else ())):
            if (room := cap[split] - size[split]) > 0:    # characters against bytes: roughly
                doc = doc if len(doc) <= room else doc[:doc.rfind("\n", 0, room) + 1]
                files[split].write(doc + f"\n{SEPARATOR}\n")
                size[split] += len(doc.encode())
            if all(size[s] >= cap[s] for s in cap):
                break
        for s, f in files.items():               # val.txt last: it marks the slice as complete
            f.close()
            os.replace(f.name, f"{folder}/{s}.txt")
    return folder


def heldout():
    """Rule 1's text: HELDOUT_BYTES (x scale, at most 1) of the main val split, cut at a line."""
    path = os.path.join(OPTS.work, "heldout.txt")
    if not os.path.exists(path):
        text = open(corpus("main", 12 * OPTS.scale, 1.5 * OPTS.scale) + "/val.txt").read()
        with open(path + ".tmp", "w") as f:       # cut at a line
            f.write(text[:text.rfind("\n", 0, int(HELDOUT_BYTES * min(1.0, OPTS.scale))) + 1] or text)
        os.replace(path + ".tmp", path)
    return path


def domains():
    """Study 4's corpus in work/corpus/domains/: train.txt, the domains one after another, each ONE
    document (with train.py --contiguous_batches a batch holds one domain; train_docs.npy of its
    shards says where each starts); NAME.txt, each one's held-out end; val.txt, all of those;
    domains.json, their names in order. Sizes in UTF-8 bytes (DOMAIN_MB, HELDOUT_BYTES / 3)."""
    folder = os.path.join(OPTS.work, "corpus", "domains")
    if not os.path.exists(f"{folder}/domains.json"):
        from data.corpus import SEPARATOR, fetch_shakespeare, iter_documents
        held = int(HELDOUT_BYTES / 3 * min(1.0, 2 * OPTS.scale))   # >= a val batch at --scale=0.01
        size = lambda i: int(DOMAIN_MB[i] * 1e6 * OPTS.scale)
        head = lambda data, n: data[:data.rfind(b"\n", 0, n) + 1] if len(data) > n else data   # lines
        parts = {}
        if children() and all(map(os.path.exists, (SHAKESPEARE, CHINESE))):     # ../shared
            books = lambda f: b"".join(d.encode() + b"\n\n" for d in islice(iter_documents(f), 40))
            parts["children"] = head(books(CHILDREN[1]), held), head(books(CHILDREN[0]), size(0))
            whole = {"shakespeare": [open(SHAKESPEARE, encoding="utf-8").read()],
                     "chinese": iter_documents(CHINESE)}
        else:                                       # the built-in Shakespeare's works, by kind
            works = fetch_shakespeare()
            kind = lambda w: next((k for k, pre in KINDS.items() if w.startswith(pre)), "plays")
            whole = {k: [t for w, t in works.items() if kind(w) == k] for k in (*KINDS, "plays")}
        for name, docs in whole.items():          # held out: the end of the text; train: its start
            data = b"\n\n".join(d.encode() for d in docs)
            cut = data.find(b"\n", max(0, len(data) - held)) + 1
            parts[name] = data[cut:], head(data[:cut], size(len(parts)))
        os.makedirs(folder, exist_ok=True)
        sep = f"\n{SEPARATOR}\n".encode()         # one document a domain: no separator inside one
        for name, (val, _) in parts.items():
            pathlib.Path(f"{folder}/{name}.txt").write_bytes(val)
        for split, i in (("train", 1), ("val", 0)):
            text = b"".join(p[i].replace(sep, b"\n\n") + sep for p in parts.values())
            pathlib.Path(f"{folder}/{split}.txt").write_bytes(text)
        pathlib.Path(f"{folder}/domains.json").write_text(json.dumps(list(parts)))   # last: done
    return folder, json.load(open(f"{folder}/domains.json"))


def tokenizer(vocab, count_on="main"):
    """A compact tokenizer of `vocab` tokens counted on a corpus's train text; full: cl100k."""
    name = vocab if count_on == "main" else f"{count_on}-{vocab}"
    out, log = f"{OPTS.work}/tok/{name}.json", f"{OPTS.work}/tok/{name}.log"
    args = ["tokenizer_compress.py", f"--input={OPTS.work}/corpus/{count_on}/train.txt",
            f"--out={out}", f"--out_dir={OPTS.work}/tok"]
    with LOCKS.setdefault(out, threading.Lock()):                      # made once, by one job
        if vocab != "full" and not os.path.exists(out):
            if tail := sh(args + [f"--vocab={vocab}"], log, check=False):   # a small text keeps fewer
                alive = re.search(r"use --vocab=(\d+)", tail) or \
                    fail(f"tokenizer_compress.py failed: {tail} (log: {log})")
                sh(args + [f"--vocab={alive[1]}"], log)                  # tokens alive: take them all
    return "cl100k_base" if vocab == "full" else out


def shards(vocab, corpus_dir=None, name=None, count_on="main"):
    """data/prepare.py of a corpus slice (default: main) with a tokenizer: (folder, meta)."""
    folder, text = f"{OPTS.work}/data/{name or vocab}", corpus_dir or f"{OPTS.work}/corpus/main"
    with LOCKS.setdefault(folder, threading.Lock()):                   # made once, by one job
        if not os.path.exists(f"{folder}/meta.json"):
            sh(["data/prepare.py", f"--tokenizer={tokenizer(vocab, count_on)}", f"--out_dir={folder}",
                f"--input={text}/train.txt", f"--val_input={text}/val.txt", "--overwrite"], folder + ".log")
    return folder, json.load(open(f"{folder}/meta.json"))


# ---- one training run: reused when finished, resumed when interrupted ---------------------------
run_dir = lambda name, seed: os.path.join(OPTS.work, "runs", f"{name}-s{seed}")   # a run's folder


def train(name, n_steps, seed, data="8k", shape=None, init=None, fork=None, texts=None, **opts):
    """train.py, then `eval.py --bpb` of its checkpoint: "bpb" (rule 1; with `texts` {name: file},
    "domains" {name: bpb} and "bpb" over all their bytes), the val "curve" [(tokens, train seconds,
    val bpb)] on train.py's windows (plots, equal-time reads), "tok_s", "params"."""
    out, shape = run_dir(name, seed), shape or BASE   # read now: toy
    with LOCKS.setdefault(out, threading.Lock()):     # two jobs never train one run (a fork's source)
        return _train(out, name, n_steps, seed, data, shape, init, fork, texts, opts)


def _train(out, name, n_steps, seed, data, shape, init, fork, texts, opts):
    recipe = repr((n_steps, data, shape, init, sorted(opts.items())))   # what made it, kept by it
    if os.path.exists(f"{out}/result.json"):                           # finished: reused if alike
        if (res := json.load(open(f"{out}/result.json"))).get("recipe") == recipe:
            return res
        fail(f"{out} was made by other options ({res.get('recipe')}); delete it, or change --work")
    if fork and not os.path.exists(f"{out}/ckpt.pt"):                  # go on from another run
        skip = shutil.ignore_patterns("result.json", "heldout*")                  # not its scores
        shutil.copytree(fork(seed), out, dirs_exist_ok=True, ignore=skip)
    args = {"data": data if os.path.isdir(data) else shards(data)[0], "out_dir": out, "seed": seed,
            "max_iters": n_steps, "batch_size": BATCH, "seq_len": SEQ, "sample_tokens": 0,
            "curves": False,                                 # not read here: ~1 s a run saved
            "warmup_iters": max(1, n_steps // 10), "eval_interval": max(3, n_steps // 10),  # >= 3
            "log_interval": max(1, n_steps // 20), "device": OPTS.device,
            # val tokens an evaluation: 8 batches of BATCH x SEQ (quick: 4), whatever the run's batch
            "eval_iters": max(1, round(8 * min(4 * OPTS.scale, 1) * BATCH / opts.get("batch_size", BATCH))),
            "init_from": "resume" if os.path.exists(f"{out}/ckpt.pt") else init or "scratch"}
    if not (init or fork):          # a new model; a student or a fork has its checkpoint's shape
        args.update(zip(("n_layer", "n_embd", "n_head", "ffn_ratio"), shape), block_size=SEQ, ffn_multiple=32)
    print(f"{time.strftime('%X')} {name} s{seed}: {n_steps} steps, {args['init_from']}", flush=True)
    sh(["train.py"] + [f"--{k}={v}" for k, v in {**args, **opts}.items()], f"{out}/stdout.txt")
    rows = [json.loads(line) for line in open(f"{out}/log.jsonl") if line.strip()]
    seconds, last, curve, trained = 0.0, 0, [], [r for r in rows if "tok_per_s" in r]
    for r in rows:                  # train seconds: a logged interval's tokens / its tokens per s
        if "tok_per_s" in r:
            seconds, last = seconds + (r["tokens"] - last) / r["tok_per_s"], r["tokens"]
        else:
            curve.append((r["tokens"], seconds, r["val_bpb"]))
    from model import load_model
    scored = {d: evaluate(f"{out}/ckpt.pt", f"{out}/heldout-{d}.json", f"--bpb={t}")["bpb"]
              for d, t in (texts or {}).items()}        # study 4: each domain's held-out text
    n_bytes = sum(r["bytes"] for r in scored.values())       # texts: the bpb of all their bytes
    bpb = sum(r["bpb"] * r["bytes"] for r in scored.values()) / n_bytes if texts else \
        heldout_bpb(f"{out}/ckpt.pt", f"{out}/heldout.json")
    res = {"curve": curve, "bpb": bpb, "domains": {d: r["bpb"] for d, r in scored.items()},
           "out": out,
           "tok_s": float(np.median([r["tok_per_s"] for r in trained])), "recipe": recipe,
           "train_loss": float(np.mean([r["loss"] for r in rows if "loss" in r][-3:])),
           "params": load_model(f"{out}/ckpt.pt")[0].param_count()}
    pathlib.Path(f"{out}/result.json.tmp").write_text(json.dumps(res))   # atomic: never half a file
    os.replace(f"{out}/result.json.tmp", f"{out}/result.json")
    return res


def evaluate(ckpt, report, *flags):
    """eval.py of a checkpoint with `flags`, run once: the result line it appended to `report`."""
    if not os.path.exists(report):
        sh(["eval.py", f"--ckpt={ckpt}", *flags, f"--out={report}", f"--device={OPTS.device}"], report[:-5] + ".log")
    return json.loads(open(report).readlines()[-1])                # eval.py appends a line a run


# ---- the statistics of the module docstring: pooled σ, paired Δ and its SE, the seed rule -------
class Variant:
    """One configuration of a study (a table row); `res` holds a result per seed, from --seed up."""
    def __init__(self, label, name, n_steps, **spec):
        self.label, self.name, self.n_steps, self.spec, self.res = label, name, n_steps, spec, []

    get = lambda self, key: float(np.mean([r[key] for r in self.res]))   # mean over the seeds run
    bpb = property(lambda self: self.get("bpb"))
    by_seed = property(lambda self: {OPTS.seed + i: r["bpb"] for i, r in enumerate(self.res)})
    cell = property(lambda self: f"{self.bpb:.3f}" + f" (n={len(self.res)})" * (len(self.res) > 1))


# --jobs at a time, in order; a lone item runs here, alone: on every core
pmap = lambda f, items: list((POOL.map if POOL and len(items) > 1 else map)(f, items))


def run_all(pairs):
    """Each (Variant, n) gets its first n seeds: finished runs are read here, the missing ones go
    --jobs at a time, longest first (the rest overlap it; cl100k: ~7x a step); machinery."""
    todo = {(v, s) for v, n in pairs for s in range(OPTS.seed + len(v.res), OPTS.seed + n)}
    cost = lambda v: v.n_steps * v.spec.get("batch_size", BATCH) * (7 if v.spec.get("data") == "full" else 1)
    done = [job for job in todo if os.path.exists(f"{run_dir(job[0].name, job[1])}/result.json")]
    new = sorted(todo - set(done), key=lambda job: (-cost(job[0]), job[0].name, job[1]))
    forks = {seed: v.spec["fork"] for v, seed in new if "fork" in v.spec}   # study 4: each seed's round 1
    pmap(lambda item: item[1](item[0]), list(forks.items()))     # first: no job waits on another's
    run = lambda job: train(job[0].name, job[0].n_steps, job[1], **job[0].spec)
    results = dict(zip(done + new, [run(job) for job in done] + pmap(run, new)))
    for v, seed in sorted(results, key=lambda job: job[1]):           # in seed order
        v.res.append(results[v, seed])
        REPEATS.setdefault(v.name, {})[seed] = results[v, seed]["bpb"]
    return [v for v, _ in pairs]


def pooled_sigma():
    """Rule 2: (σ, degrees of freedom) pooled over the configurations with >= 2 seeds; (None, 0)."""
    groups = [np.array(list(g.values())) for g in REPEATS.values() if len(g) >= 2]
    df = sum(len(g) - 1 for g in groups)
    return (math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / df) if df else None), df


def paired(claim, other):
    """Rule 3: (Δ, SE, n) of mean(claim arms) - mean(other arms) over the seeds every arm ran. Each
    side is a list of Variants (a claim may be averaged over settings); Δ < 0 favours the claim."""
    seeds = sorted(set.intersection(*(set(v.by_seed) for v in claim + other)))
    mean = lambda arms, s: np.mean([v.by_seed[s] for v in arms])
    d = np.array([mean(claim, s) - mean(other, s) for s in seeds])
    sigma, _ = pooled_sigma()       # < 3 seeds: Var(d) of independent runs, σ²/k for a mean of k
    se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) >= 3 else \
        sigma * math.sqrt((1 / len(claim) + 1 / len(other)) / len(d)) if sigma else None  # 1:1: 2σ²
    return float(d.mean()), se, len(d)


def decide(claim, other, rest=()):
    """Rule 4: each arm's --seeds, then one more to every arm while |Δ| <= 2 SE and n > 8σ²/Δ²
    asks for more (up to --max_seeds); one seed of each of `rest` (a study's other rows) goes with
    the first seeds (one batch of jobs: fewer idle workers)."""
    claim, other = [[v] if isinstance(v, Variant) else v for v in (claim, other)]
    for n in range(OPTS.seeds, OPTS.max_seeds + 1):     # n = --max_seeds always returns
        run_all([(v, n) for v in claim + other] + [(v, 1) for v in rest] * (n == OPTS.seeds))
        (delta, se, n), (sigma, _) = paired(claim, other), pooled_sigma()
        k = 1 / len(claim) + 1 / len(other)     # |Δ| > 2 SE, SE² = σ²k/n <=> n > 4σ²k/Δ² (8σ²/Δ²)
        wanted = 4 * sigma ** 2 * k / delta ** 2 if sigma and delta else math.inf
        if (se is not None and abs(delta) > 2 * se) or n >= min(wanted, OPTS.max_seeds):
            return delta, se, n


def verdict(arms, result, holds, fails):
    """Rule 4: past 2 SE, Δ < 0 (the paper's sign) Reproduces, Δ > 0 Does not; else Inconclusive."""
    delta, se, n = result
    numbers = f"Δ = {delta:+.3f} bpb, SE {'unknown' if se is None else f'{se:.3f}'}, {n} seed(s)"
    word, why = ("Inconclusive at this scale", "|Δ| <= 2 SE.") if se is None or abs(delta) <= 2 * se \
        else ("Reproduces", holds) if delta < 0 else ("Does not reproduce", fails)
    return f"**Verdict** ({arms}). **{word}** ({numbers}): {why}"


# ---- the page: sections, plots, tables -------------------------------------------------------
def section(study, here, *parts):
    """A page section: title, the study's docstring (the paper's claim), `here`, `parts`."""
    key = study.__name__[len("study_"):]                     # "## 4. Multiple-round training"
    return "\n\n".join([f"## {list(STUDIES).index(key) + 1}. {STUDIES[key]}",
                        "**Paper**" + " ".join(study.__doc__.split())[5:], "**Here.** " + here, *parts])


def plot(fname, xlabel, ylabel, series):
    """A PNG of {label: (xs, ys)} in a folder named after the page (results/, results-quick/)."""
    try:
        from matplotlib.figure import Figure    # no pyplot: files only, never a window
    except ImportError:
        return "_(no plot: matplotlib is not installed; `pip install matplotlib` adds the plots)_"
    ax = Figure(figsize=(6.4, 3.6), layout="tight").subplots()
    for label, (x, y) in series.items():
        ax.plot(x, y, "o-", ms=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    sub = os.path.splitext(os.path.basename(OPTS.page))[0].lower()
    os.makedirs(folder := os.path.join(os.path.dirname(OPTS.page), sub), exist_ok=True)   # beside the page
    ax.figure.savefig(os.path.join(folder, fname), dpi=110)
    return f"![{fname}]({sub}/{fname})"


# ---- the studies: each returns its section of the page ------------------------------------------
def study_tokenizer():
    """Paper (Compact Tokenizer; `../shared/PAPER.md` §1). At a fixed budget the vocabulary takes a
    large share of a tiny model (about 38% at 100k tokens for 1B, 18% at 48k [reported]); keeping
    the most frequent tokens frees parameters for the body, and 48k of ~100k was best at 1B
    [reported]."""
    from model import padded_vocab
    n, (L, C, _, ratio) = steps(STEPS), BASE
    metas = {K: shards(K)[1] for K in VOCABS + ("full",)}
    emb = lambda K: 2 * padded_vocab(metas[K]["tokenizer"]["n_vocab"]) * C   # embedding + head
    per_layer = 4 * C * C + 3 * C * 32 * math.ceil(ratio * C / 32)    # attention 4C² + SwiGLU 3CF
    budget = emb("8k") + L * per_layer
    depth = {K: max(1, round((budget - emb(K)) / per_layer)) for K in VOCABS}
    share = {K: emb(K) / (emb(K) + depth[K] * per_layer) for K in VOCABS}
    vs = {K: Variant(f"{K}, {depth[K]} layers", f"tok-{K}-L{depth[K]}", n, data=K,
                     shape=(depth[K],) + BASE[1:]) for K in VOCABS}
    vs["full"] = Variant(f"full, {L} layers", "tok-full", n, **FULL(n))
    # the compact vocabulary with the share nearest the middle of the paper's 18-38% (a priori)
    claim = min((K for K in VOCABS if K != "8k"), key=lambda K: abs(share[K] - 0.28))
    result = decide(vs[claim], vs["8k"], vs.values())
    # equal wall-clock: each val curve read (interpolated) at the fastest run's end; equal bytes: at
    # the fewest train bytes any run saw. A run not evaluated by then shows "–", never a guess.
    per_byte = {K: (lambda m: m["tokens"] / m["bytes"])(metas[K]["splits"]["train"]) for K in vs}
    seconds = min(v.res[0]["curve"][-1][1] for v in vs.values())
    n_bytes = min(v.res[0]["curve"][-1][0] / per_byte[K] for K, v in vs.items())
    axis = lambda v, at: ([at(c) for c in v.res[0]["curve"]], [c[2] for c in v.res[0]["curve"]])
    read = lambda v, x, at: "–" if x < axis(v, at)[0][0] else f"{np.interp(x, *axis(v, at)):.3f}"
    rows = [[v.label, f"{metas[K]['tokenizer']['n_vocab']:,}", f"{p['total'] / 1e6:.2f}M",
             f"{1 - p['rest'] / p['total']:.0%}", f"{v.get('tok_s') / per_byte[K]:,.0f}", v.cell,
             read(v, seconds, lambda c: c[1]), read(v, n_bytes, lambda c: c[0] / per_byte[K])]
            for K, v in vs.items() for p in [v.res[0]["params"]]]
    return section(
        study_tokenizer, f"A budget of {budget / 1e6:.2f}M parameters (8k vocabulary, {L} x {C}); "
        f"smaller vocabularies spend what they free on layers. {n} steps of {BATCH}x{SEQ} tokens; "
        f"the full cl100k_base at {L} layers (over budget) shows the speed cost. Val curves (first "
        f"seed) at *equal wall-clock* ({seconds:.0f} s), *equal bytes* ({n_bytes / 1e3:,.0f} KB).",
        table(["vocabulary, depth", "ids", "params", "vocab share", "train bytes/s", "held-out bpb",
               f"val bpb at {seconds:.0f} s", f"val bpb at {n_bytes / 1e3:,.0f} KB"], rows),
        plot("tokenizer.png", "training seconds", "val bits per byte", curves(vs.values(), 1)),
        verdict(f"{claim} vs 8k", result, f"{claim} ({share[claim]:.0%} of the parameters) and its "
                f"layers beat 8k ({share['8k']:.0%}).", f"8k ({share['8k']:.0%}) beats {claim}."))


def study_architecture():
    """Paper (Architecture Tweak; `../shared/PAPER.md` §2). At a fixed parameter budget depth
    matters most: deeper models score higher but generate more slowly [paper]; about 20 layers with
    an FFN ratio near 2.7-2.8 balance the two [reported]."""
    import torch
    from model import load_model
    n, n_new = steps(STEPS), min(SEQ - 1, steps(4 * SEQ))     # latency: tokens generated
    name = lambda s: "base" if s == BASE else f"arch-{s[0]}x{s[1]}-r{s[3]:.2f}"
    # each shape at its own lr (one lr favours one depth) by final TRAIN loss: no eval data chooses
    sweep = {k: [Variant(k, name(s) + f"-lr{m:g}" * (m != 1), n, shape=s, lr=LR * m) for m in sweep_lrs()]
             for k, s in SHAPES.items()}
    run_all([(v, 1) for runs in sweep.values() for v in runs])
    vs = {k: min(runs, key=lambda v: v.res[0]["train_loss"]) for k, runs in sweep.items()}
    result = decide(vs["deep-thin 12x96"], vs["base 4x128"])
    rows, ms, device = [], {}, "cuda" if OPTS.device != "cpu" and torch.cuda.is_available() else "cpu"
    idx = torch.zeros((1, 1), dtype=torch.long, device=device)           # generation starts at id 0
    for k, v in vs.items():
        model, _ = load_model(f"{v.res[0]['out']}/ckpt.pt", device)
        generate = lambda: model.generate(idx, n_new, temperature=0)      # greedy, KV cache
        ms[k] = 1000 * min(timeit.repeat(generate, number=1, repeat=3)) / n_new   # best of 3
        (L, C, H, ratio), p = SHAPES[k], v.res[0]["params"]
        rows.append([k, L, C, H, f"{ratio:.2f}", f"{p['total'] / 1e6:.2f}M", f"{v.spec['lr']:g}",
                     v.cell, f"{v.get('tok_s'):,.0f}", f"{ms[k]:.2f}"])
    cost = f"{ms['deep-thin 12x96'] / ms['base 4x128']:.1f}x the time per token"
    return section(
        study_architecture, f"{len(SHAPES)} shapes of ~2.9M parameters, {n} steps each at the lr "
        f"of {', '.join(f'{LR * m:g}' for m in sweep_lrs())} with the lowest final train loss. "
        f"Latency: greedy generation of {n_new} tokens, batch 1.",
        table(["shape", "layers", "width", "heads", "FFN ratio", "params", "lr", "held-out bpb",
               "train tokens/s", "ms/token"], rows),
        plot("architecture.png", "ms per generated token (KV cache)", "held-out bits per byte",
             {k: ([ms[k]], [v.bpb]) for k, v in vs.items()}),
        verdict("deep-thin 12x96 vs base 4x128, each at its best lr", result, f"depth wins, at {cost}.",
                f"the 4-layer base wins; depth also costs {cost}."))


def inherit(name, shape, layers, width):
    """inherit.py: a student of `shape` from the source model (trained first); its checkpoint."""
    out = os.path.join(OPTS.work, "inherit", f"{name}.pt")
    if not os.path.exists(out):
        src = train("inh-source", steps(SOURCE_STEPS), OPTS.seed, shape=SOURCE)["out"]
        sh(["inherit.py", f"--src={src}/ckpt.pt", f"--out={out}", f"--calib={shards('8k')[0]}",
            *[f"--{k}={v}" for k, v in zip(("n_layer", "n_embd", "n_head", "ffn_ratio"), shape)],
            f"--layers={layers}", f"--width={width}", f"--seed={OPTS.seed}", f"--seq_len={SEQ}",
            f"--batch_size={BATCH}", "--eval_batches=2", f"--calib_batches={max(2, steps(8))}",
            f"--mask_steps={steps(60)}"], out[:-3] + ".log")
    return out


def study_inheritance():
    """Paper (Parameter Inheritance; `../shared/PAPER.md` §3). Initialising the tiny model from a
    larger trained one converges faster and ends higher: the largest single gain [paper]. The first
    and last layers matter more than the middle ones [paper]; among width criteria learnable >
    Taylor > L2 > L1 > random init [reported]."""
    n, student_lr = steps(STEPS), LR / 3
    train("inh-source", steps(SOURCE_STEPS), OPTS.seed, shape=SOURCE)    # first, alone: on every core
    rand = Variant("random init", "base", n, shape=BASE, lr=LR)     # = study 2's base at lr LR
    grid = [("edges", "taylor")] + [(s, "taylor") for s in LAYERS] + [("edges", w) for w in WIDTHS]
    inits = pmap(lambda g: inherit(f"{g[0]}-{g[1]}", BASE, *g), grid)    # --jobs at a time
    vs = {(s, w): Variant(f"{s}, {w}", f"inh-{s}-{w}", n, init=init, lr=student_lr)
          for (s, w), init in zip(grid, inits)}
    result = decide(vs["edges", "taylor"], rand, vs.values())       # the paper's recipe
    by_bpb = lambda group: sorted(group, key=lambda v: v.bpb)
    ranked = by_bpb(v for (s, _), v in vs.items() if s == "edges")             # width metrics
    run_all([(v, min(3, OPTS.max_seeds)) for v in (ranked[0], ranked[-1])])   # best, worst: 3 seeds
    target, rows = rand.res[0]["curve"][-1][2], [[rand.label, "–", rand.cell, "–"]]
    # step 0: the untrained student's held-out bpb (no seed noise)
    step0 = pmap(lambda v: heldout_bpb(v.spec["init"], v.spec["init"][:-3] + "_heldout.json"), list(vs.values()))
    for v, bpb0 in zip(vs.values(), step0):
        reach = next((c[0] // (BATCH * SEQ) for c in v.res[0]["curve"] if c[2] <= target), None)
        reach = f"not in {n}" if reach is None else f"{reach} ({reach / n:.0%})"
        rows.append([v.label, f"{bpb0:.3f}", v.cell, reach])
    names = lambda group, part: " < ".join(v.label.split(", ")[part] for v in group)   # "a < b < c"
    return section(
        study_inheritance, f"Students of the base shape from a {SOURCE[0]}x{SOURCE[1]} source "
        f"({steps(SOURCE_STEPS)} steps, not counted) by each layer strategy (width: Taylor) and "
        f"width metric (layers: edges; `random`: random units) train {n} steps at peak lr "
        f"{student_lr:g} (random init: {LR:g}; the full lr undoes the inheritance). *Steps to "
        "match*: the first evaluation at or below random init's final val bpb.",
        table(["student (layers, width)", "held-out bpb at step 0 (no training)",
               f"held-out bpb after {n} steps", "steps to match random init"], rows),
        plot("inheritance.png", "tokens", "val bits per byte",
             curves([rand, vs["edges", "taylor"], ranked[0], ranked[-1]], 0)),
        verdict("edges, taylor vs random init", result, "the inherited student beats random init.",
                "random init is as good.") + " Layers, best first: "
        f"{names(by_bpb(v for (_, w), v in vs.items() if w == 'taylor'), 0)}; widths: {names(ranked, 1)} "
        f"(paper: learnable < taylor < l2 < l1 < random), one seed but best and worst; pooled σ = "
        f"{pooled_sigma()[0] or math.nan:.3f}: gaps under 2√2σ are noise.")


def study_rounds():
    """Paper (Multiple-Round Training; `../shared/PAPER.md` §5). Tiny models forget; a second round
    on the batches the model finds hardest (drawn with p = softmax(loss), 50% of them [reported])
    helps, and a third adds nothing [reported]."""
    text, names = domains()
    folder, meta = shards("8k", text, "domains", count_on="domains")
    n = (meta["splits"]["train"]["tokens"] - 1) // SEQ // ROUNDS_BATCH   # N batches: round 1, one pass
    texts = {d: f"{text}/{d}.txt" for d in names}                    # bpb per domain, and overall
    base = dict(data=folder, rounds=2, refine_iters=n // 2, contiguous_batches=True, texts=texts,
                batch_size=ROUNDS_BATCH)
    first = lambda seed: train("rounds-r1", n, seed, halt_at=n, **base)     # a seed's round 1

    def fork(seed):     # a seed's round 1, with its model's batch losses once the first arm scored
        out, scored = first(seed)["out"], run_dir(vs[0].name, seed)   # them (reused)
        if os.path.exists(f"{scored}/result.json"):
            for f in ("round2_batch_losses.npy", "round2_selection.json"):
                shutil.copy(f"{scored}/{f}", out)
        return out
    arms = {"softmax, T = 1 (paper)": ("softmax", 1, 0.5), **ROUND2, "all data": ("uniform", 1, 1)}
    vs = [Variant(label, f"rounds-{mode}-T{temp:g}-R{rate:g}", n, refine=mode, sampling_rate=rate,
                  refine_temperature=temp, fork=fork, **base)
          for label, (mode, temp, rate) in arms.items()]
    result = decide(vs[0], vs[-1], vs)
    # batch i: tokens [i, i + 1) x ROUNDS_BATCH x SEQ of train.bin; its domain: the one its middle is in
    starts = np.load(f"{folder}/train_docs.npy")[:len(names)]          # (domains,) first tokens
    domain = np.searchsorted(starts, (np.arange(n) + 0.5) * ROUNDS_BATCH * SEQ, "right") - 1   # (N,)
    losses = np.load(f"{vs[0].res[0]['out']}/round2_batch_losses.npy")  # (N,) round 1's model's
    per = lambda res: [f"{np.mean([r['domains'][d] for r in res]):.3f}" for d in names]
    r1 = [first(OPTS.seed)]
    mean_loss = " / ".join(f"{losses[domain == k].mean():.2f}" for k in range(len(names)))
    rows = [["end of round 1", mean_loss, *per(r1), f"{r1[0]['bpb']:.3f}"]]
    for v in vs:                    # kept: the first seed's selection, counted per domain
        kept = np.load(f"{v.res[0]['out']}/round2_selection.npy")
        rows.append([v.label, " / ".join(map(str, np.bincount(domain[kept], minlength=len(names)))),
                     *per(v.res), v.cell])
    return section(
        study_rounds, f"Three domains ({', '.join(names)}) one after another, a batch from one "
        f"(`--contiguous_batches`). Round 1: one pass over the {n} batches of {ROUNDS_BATCH}x{SEQ}; "
        f"round 2: {n // 2} steps (a fresh schedule), one pass over a 50% draw by each rule "
        "(uniform: the control) or all batches at equal steps. Held-out bpb: each domain's "
        "held-out end, and all three.",
        table(["round 2 on", f"batches kept, first seed ({' / '.join(names)}); round 1: mean loss",
               *(f"bpb {d}" for d in names), "held-out bpb"], rows),
        verdict("softmax T = 1 vs all data", result, "the softmax-refined half beats all data.",
                "all data is as good or better."))


def study_batch():
    """Paper (Batch Size and Learning Rate; `../shared/PAPER.md` §4). Tiny models prefer batches
    below about 4M tokens, and the learning rate should follow the batch as lr = lr0 (bs / bs0)^r
    with r = 0.5 [reported] (`batch_lr()` in `train.py`)."""
    vs = {(bs, r): Variant(f"{bs}, r = {r:g}", f"batch{bs}-r{r:g}", steps(STEPS), batch_size=bs,
                           lr_scaling_r=r, base_batch_tokens=BATCH * SEQ) for bs in BATCHES for r in POWERS}
    result = decide([vs[bs, 0.5] for bs in BATCHES], [vs[bs, 0] for bs in BATCHES], vs.values())
    return section(
        study_batch, f"Batches of {' and '.join(map(str, BATCHES))} sequences of {SEQ}, "
        f"{steps(STEPS)} steps each; lr0 = {LR:g} tuned at {BATCH}. Cells: peak lr: held-out bpb.",
        table(["tokens per step"] + [f"r = {r:g}" for r in POWERS],
              [[bs * SEQ] + [f"{LR * (bs / BATCH) ** r:.2g}: {vs[bs, r].cell}" for r in POWERS] for bs in BATCHES]),
        verdict("r = 0.5 vs a fixed lr, mean over the batches", result,
                "the square-root rule helps away from the tuned batch.", "it does not help here."))


def zero_shot(base, pro):
    """Study 6's rows from eval.py's {task: {...}} of both arms, and a sentence on chance. Beside
    them (a missing one: "–"): the label prior (the most frequent gold answer: BoolQ's first 100
    are 70% "yes"), the shortest answer; the margin (gold minus best distractor log-lik., nats)."""
    rows, side, mark = [], dict(above=0, below=0, within=0), dict(above=" ▲", below=" ▼", within="")
    num = lambda r, k: f"{r[k]:.3f}" + (f" ± {r[k + '_stderr']:.3f}" if k + "_stderr" in r else "")
    for task, r0 in base.items():
        r1, n = pro.get(task, {}), f"(n={r0.get('n', '?')})"
        for key in [k for k in ("acc", "acc_norm") if k in r0 and k in r1]:
            cells = [num(r0, b) if b in r0 else "–" for b in ("chance", "label_prior", "shortest")]
            for r in (r0, r1):          # 2 SE from chance: above it, below it, or within (noise)
                gap, se = r[key] - r.get("chance", math.nan), r.get(key + "_stderr", math.nan)
                where = "above" if gap > 2 * se else "below" if -gap > 2 * se else "within"
                side[where] += 1
                cells.append(num(r, key) + mark[where])
            rows.append([f"{task} {key} {n}", *cells])
        if "margin" in r0 and "margin" in r1:   # SE as if the arms were independent: conservative
            se = math.hypot(r0.get("margin_stderr", math.nan), r1.get("margin_stderr", math.nan))
            gain = f"Pro − baseline: {r1['margin'] - r0['margin']:+.3f} ± {se:.3f}"
            rows.append([f"{task} margin, nats {n}", "–", "–", gain, num(r0, "margin"), num(r1, "margin")])
    below = f"; {side['below']} more than 2 SE below (▼): not noise but a preference for wrong " \
            "answers (see the label prior and the shortest answer)" if side["below"] else ""
    return rows, (f"{side['above']} of {sum(side.values())} scores lie more than 2 SE above chance "
                  f"(▲){below}; the other {side['within']} are within 2 SE of chance: noise here.")


def study_together():
    """Paper (headline; `../shared/PAPER.md`). Each technique adds to the next: PanGu-π-1B 42.41 ->
    Pro 51.28 average over 10 benchmarks [code]."""
    n, limit = steps(STEPS), max(5, round(500 * OPTS.scale))
    base = Variant("baseline: full vocabulary, 4x128, random init, one round", "tok-full", n, **FULL(n))
    r1 = round(2 * n / 3)           # round 2: one pass over half of round 1's batches; n steps in all
    pro = Variant("Pro: 8k vocabulary, 12x96, inherited, two rounds", "pro", r1, rounds=2,
                  lr=LR / 3, refine_iters=n - r1, init=inherit("pro-uniform-taylor", DEEP, "uniform", "taylor"))
    run_all([(pro, OPTS.seeds)])    # side by side; then the baseline's 2nd seed alone (on every core)
    result, flags = decide(pro, base), ("--tasks=all", f"--limit={limit}")
    found = lambda out: os.path.isdir(f"{SHARED}/eval") or os.path.exists(f"{out}/eval.json")
    evals = pmap(lambda out: evaluate(f"{out}/ckpt.pt", f"{out}/eval.json", *flags)["tasks"] if found(out)
                 else {}, (base.res[0]["out"], pro.res[0]["out"]))     # zero-shot: first seed, side by side
    rows, chance = zero_shot(*evals)
    scored = np.isfinite(np.load(f"{pro.res[0]['out']}/round2_batch_losses.npy")).sum()  # round 1's
    return section(
        study_together, f"{n} steps of {BATCH}x{SEQ} each: the baseline in one round; Pro in two, "
        f"{r1} steps and {n - r1} (about one pass over the softmax-refined half of round 1's batches) "
        f"from `inherit.py` at lr {LR / 3:g}. "
        f"Not counted: the source's training (as in the paper); counted: refining's {scored} "
        f"scoring passes (~{scored / 3:.0f} steps' compute). Zero-shot (`eval.py`, first {limit} "
        f"items, first seed, ± 1 SE): {chance}",
        table(["measure", "chance", "label prior", "shortest answer", "baseline", "Pro"],
              [["held-out bpb", "–", "–", "–", base.cell, pro.cell]] + rows)
        if evals[0] else "_(no benchmark files in ../shared/data/eval: zero-shot not measured)_",
        verdict("Pro vs baseline, held-out bpb", result, "the Pro recipe beats the baseline.",
                "the baseline is as good or better."))


# ---- the page: header, atomic write, main -------------------------------------------------------
def header(t0, commit, argv):
    import torch
    dev = torch.cuda.get_device_name() if OPTS.device != "cpu" and torch.cuda.is_available() else \
        f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    sigma, df = pooled_sigma()
    threads = max(1, os.cpu_count() // OPTS.jobs) if OPTS.jobs > 1 else torch.get_num_threads()
    noise = f"σ = {sigma:.4f} bpb ({df} degrees of freedom)" if df else "not measured (1 seed)"
    return ("# nanopangu: the paper's findings at laptop scale\n\nWritten by `python reproduce.py "
            f"{' '.join(argv)}` on {time.strftime('%Y-%m-%d')}, git commit {commit}. Machine: "
            f"{platform.platform()}, {dev}, torch {torch.__version__}. Corpus: "
            f"{'children' if children() else 'Shakespeare'}. Seeds from {OPTS.seed} (--seeds "
            f"{OPTS.seeds}, at most {OPTS.max_seeds}); scale {OPTS.scale:g}; "
            f"{(time.time() - t0) / 60:.0f} min (reused runs not counted); {OPTS.jobs} run(s) at a time "
            f"on {threads} thread(s) each, a lone one on all (speeds and times are per run, beside the "
            "others).\n\nTables "
            "and verdicts use bits per byte (bpb: lower is better, comparable across tokenizers) on one fixed "
            f"held-out text ({os.path.getsize(heldout()) / 1e3:.0f} KB, `eval.py --bpb`). "
            f"Run-to-run noise (pooled over configurations with 2+ seeds): {noise}. A verdict "
            "compares two arms seed by seed (paired differences) and needs |Δ| > 2 SE. At ~3M "
            "parameters and under a million tokens, what holds at 1B may not hold here.\n")


def main(argv=None):
    global OPTS, POOL
    argv = sys.argv[1:] if argv is None else list(argv)
    OPTS = parse_args(argv)
    POOL = ThreadPoolExecutor(OPTS.jobs) if OPTS.jobs > 1 else None     # None: one run at a time, here
    page = open(OPTS.page).read() if os.path.exists(OPTS.page) else ""
    dropped = sorted(set(re.findall(r"^## \d\. (.*)$", page, re.M)) - {STUDIES[s] for s in OPTS.only})
    if dropped and len(OPTS.only) < len(STUDIES):   # never clobber a fuller page with a partial run
        fail(f"{OPTS.page} holds studies this --only run would drop ({'; '.join(dropped)}); give "
             "another --page, or none (a partial run writes docs/RESULTS-only-STUDY.md)")
    git = lambda *a: subprocess.run(["git", *a], cwd=HERE, capture_output=True, text=True).stdout
    # the commit of the code that runs, read at the start: the page must not name a later one
    commit = (git("rev-parse", "--short", "HEAD").strip() or "?") + " (and uncommitted changes)" * \
        bool(git("status", "--porcelain", "--untracked-files=no").strip())
    t0, sections, partial = time.time(), [], os.path.splitext(OPTS.page)[0] + ".partial.md"
    REPEATS.clear()
    os.makedirs(os.path.dirname(os.path.abspath(OPTS.page)), exist_ok=True)
    try:
        heldout()                                   # the main corpus slice and rule 1's text
        for s in OPTS.only:
            sections.append(globals()["study_" + s]())
            with open(partial, "w") as f:           # after each study: what is done survives a stop
                f.write(header(t0, commit, argv) + "\n" + "\n\n".join(sections) + "\n")
            print(f"wrote {partial} ({s})")
    except KeyboardInterrupt:                       # Ctrl-C: one line, and how to go on
        fail("interrupted; run the same command again to resume (finished runs are kept)")
    os.replace(partial, OPTS.page)                  # the finished page replaces the old one at once
    print(f"wrote {OPTS.page}")


if __name__ == "__main__":
    main()
