"""bench/gpu_check.py — issue 21's one GPU check: kernels' correctness and speed, bf16 training,
and the speed of the 1B model, in one table.

    python bench/gpu_check.py                    # CUDA machine, ~7 minutes; writes out/gpu_check/
    python bench/gpu_check.py --dry              # every step at toy size on CPU (Triton interpreter)
    python bench/gpu_check.py --steps=1b_compile,profile --budget=200    # rerun some steps

Prints ONE table (measure, target, PASS/MISS and by how much) and writes it with every raw log to
--out: table.md, results.json, logs/. Each step is guarded: a failure becomes a FAIL row and the
next step runs. No step starts after --budget seconds, and a subprocess is stopped when it ends.
  kernels          tests/test_kernels.py on CUDA tensors (TRITON_INTERPRET=0) with its GPU-size
                   cases: T = 1, 17, 2048, 4097; head 64/128; GQA 14->2, 16->1; fp32/bf16/fp16
  speed_rmsnorm    kernels/bench.py: RMSNorm + residual, 16k rows, hidden 1792 and 2048, GB/s
  speed_attention  kernels/bench.py: causal attention, bf16, head 128, T = 2048, 8192, TFLOP/s
  tiny             train.py --preset=tiny, 50 steps, kernels on and off: losses within bf16 noise
  1b_*             train.py --preset=pangu-1b-pro, seq 2048, 20 steps: kernels off, on, on with
                   --act_ckpt, on with --compile=true: tokens/s, MFU, peak memory
  plan             train.py --dry_run for the same shape: predicted vs measured peak memory
  profile          torch.profiler over one pangu-1b-pro step: the five kernels taking most time
Training data: the bytes of this repository's own text (a token per byte, 257 ids), written as
a shard into --out, so the GPU machine needs no download and no tokenizer. --dry runs the same
steps with a 2-layer tiny model, 3 steps, a 12 KB shard and the kernels in the interpreter: its
figures say nothing of speed, and its results read "dry".
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# Issue 21's targets on H100/H200 (bf16 dense 989 TFLOP/s; HBM 3.35 / 4.8 TB/s)
RMS_FWD_GBS, RMS_BWD_X, ATTN_FWD_X, ATTN_BWD_X, MFU = 2600, 1.0, 1.0, 0.7, 0.45
# Kernels on vs off, same seed and data. bf16 keeps 8 significant bits (2^-8 = 0.4% a rounding);
# the kernels round in other places than PyTorch (P and dS in bf16, fp32 sums in another order)
# and 50 AdamW steps amplify that, but a wrong gradient term moves the loss far more than 2%.
TINY_REL_TOL = 0.02
DRY_MODEL = ["--n_layer=2"]  # --dry: the plumbing is under test, not the model
ONE_B = ["--preset=pangu-1b-pro", "--seq_len=2048", "--batch_size=8", "--vocab_size=48064"]
# How train.py runs here: checkpoints off (a 1B one is ~12 GB of fp32 weights and AdamW state,
# written twice a run) and the process's peak GPU memory printed at exit. --dry: torch.compile
# with aot_eager (inductor's C++ build takes minutes on CPU; aot_eager traces the same graphs), and no
# curves.png (matplotlib: most of a toy run's time).
RUNNER = """import atexit, functools, os, runpy, sys, torch, model
model.save_checkpoint = lambda obj, path: None
if os.environ.get("GPU_CHECK_DRY"):
    torch.compile = functools.partial(torch.compile, backend="aot_eager")
    import curves
    curves.draw = lambda run_dirs, png_path: None
peak = lambda: torch.cuda.max_memory_allocated() if torch.cuda.is_available() else -1
atexit.register(lambda: print("gpu_check: peak_memory_bytes", peak(), flush=True))
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def verdict(got, target, dry, higher=True):
    """PASS/MISS against a target, with by how much; --dry figures are never judged."""
    if dry:
        return "dry"
    if not higher:  # a bound from above: by how far past it
        return "PASS" if got <= target else f"MISS ({got / target - 1:.0%} over)"
    if got >= target:
        return f"PASS (+{got / target - 1:.0%})"
    return f"MISS ({1 - got / target:.0%} short)"


def make_shard(out, dry):
    """The bytes of the repo's Markdown and Python files as train/val shards for train.py."""
    files = sorted(f for pattern in ("*.md", "*/*.md", "*.py", "*/*.py")
                   for f in glob.glob(os.path.join(ROOT, pattern)))
    # a token per byte, then 256: the end-of-document token, between files
    ids = np.concatenate([np.append(np.frombuffer(open(f, "rb").read(), np.uint8), 256)
                          for f in files])
    ids = ids[:12_000] if dry else ids  # ~600k tokens in all: plenty for 20 steps of 16k
    n_val = len(ids) // 10  # the last 10% is validation
    os.makedirs(out, exist_ok=True)
    splits = {}
    for split, part in (("train", ids[:-n_val]), ("val", ids[-n_val:])):
        part.astype(np.uint16).tofile(os.path.join(out, f"{split}.bin"))
        splits[split] = {"tokens": len(part), "bytes": len(part),
                         "documents": int((part == 256).sum())}
    # meta.json as data/prepare.py writes it, for a "tokenizer" that is the identity on bytes
    meta = {"tokenizer": {"name": "bytes", "source": "bytes", "sha256": "bytes", "n_vocab": 257},
            "dtype": "uint16", "eot_token": 256, "splits": splits}
    json.dump(meta, open(os.path.join(out, "meta.json"), "w"), indent=1)
    return out


class Check:
    """Runs the steps under one time budget and collects the table's rows."""

    def __init__(self, args):
        self.args, self.dry, self.rows, self.runs = args, args.dry, [], {}
        self.deadline = time.time() + args.budget
        self.logs = os.path.join(args.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.device = "cpu" if self.dry else "cuda"
        self.env = {**os.environ, "TRITON_INTERPRET": "1" if self.dry else "0", "PYTHONPATH": ROOT}
        if self.dry:  # the CPU even where a GPU exists
            self.env.update(CUDA_VISIBLE_DEVICES="", GPU_CHECK_DRY="1")

    def row(self, step, measure, value, target="", result="info"):
        self.rows.append(dict(step=step, measure=measure, value=value, target=target, result=result))

    def run(self, commands):
        """Run {name: command} side by side in the repo until the budget ends; each one's output
        goes to logs/NAME.txt. Returns {name: output}; raises RuntimeError naming every failure."""
        procs = {}  # all started before any is awaited: they run side by side
        for name, cmd in commands.items():
            log = open(os.path.join(self.logs, f"{name}.txt"), "w")
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            procs[name] = log, subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT)
        texts, failed = {}, []
        for name, (log, proc) in procs.items():
            try:
                code = proc.wait(timeout=max(self.deadline - time.time(), 1))
            except subprocess.TimeoutExpired:  # the budget is spent: stop it, keep its log
                proc.kill()
                code = proc.wait() and "killed (time budget spent)"
            log.close()
            texts[name] = open(log.name).read()
            if code != 0:
                last = (texts[name].strip().splitlines() or [""])[-1][:150]
                failed.append(f"{name} exit {code}: {last}")
        if failed:
            raise RuntimeError("; ".join(failed))
        return texts

    def train(self, runs):
        """train.py through RUNNER, {name: options} side by side: {name: {"rows": its log rows,
        "peak": peak memory in bytes (-1 on CPU)}}."""
        cmds = {}
        for name, extra in runs.items():
            out_dir = os.path.join(self.args.out, "runs", name)
            shutil.rmtree(out_dir, ignore_errors=True)  # a rerun starts afresh
            cmds[name] = [sys.executable, "-c", RUNNER, f"--data={self.shard}", f"--out_dir={out_dir}",
                          "--eval_interval=100000", "--eval_iters=1", "--sample_tokens=0",
                          f"--device={self.device}", *extra]
        for name, text in self.run(cmds).items():
            # train.py's log rows: {"round", "step", "tokens", "loss", "lr", "tok_per_s", "mfu"}
            logs = [json.loads(line) for line in open(os.path.join(self.args.out, "runs", name, "log.jsonl"))]
            peak = re.findall(r"gpu_check: peak_memory_bytes (-?\d+)", text)
            self.runs[name] = {"rows": [r for r in logs if "loss" in r],  # train rows, not eval
                               "peak": int(peak[-1]) if peak else -1}
        return self.runs

    # ------------------------------------------------------------------------------ the steps --
    def kernels(self):
        """pytest in 4 processes side by side (a dtype each, then the rest): Triton compiles every
        kernel per dtype, head size and divisibility of T and H, ~150 builds one process does in turn."""
        groups = {"kernels": "gqa or fp16"} if self.dry else {
            "kernels_fp32": "dt_fp32", "kernels_bf16": "dt_bf16", "kernels_fp16": "dt_fp16",
            "kernels_rest": "not dt_"}
        xml = {name: os.path.join(self.logs, f"{name}.xml") for name in groups}
        for path in xml.values():
            if os.path.exists(path):
                os.remove(path)  # never count a previous run's report
        try:
            self.run({name: [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/test_kernels.py", "-k", expr, f"--junitxml={xml[name]}"]
                      for name, expr in groups.items()})
        except RuntimeError:
            pass  # failed tests are counted from the reports below; a crash leaves none: error
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for name, path in xml.items():
            if not os.path.exists(path):
                raise RuntimeError(f"pytest wrote no report; see logs/{name}.txt")
            suite = ET.parse(path).getroot()
            suite = suite if suite.tag == "testsuite" else suite[0]  # <testsuites> around it
            counts = {k: counts[k] + int(suite.get(k, 0)) for k in counts}
        # skipped: the GPU-size cases in --dry, and the bf16 tl.dot case where the interpreter is wrong
        bad, skipped = counts["failures"] + counts["errors"], counts["skipped"]
        self.row("kernels", "correctness vs fp32 reference, fwd + every grad",
                 f"{counts['tests'] - bad - skipped} passed, {bad} failed, {skipped} skipped",
                 "all pass", "dry" if self.dry else ("PASS" if bad == 0 else "FAIL"))

    def bench_args(self):
        """(device, timer, dtype) for kernels/bench.py: bf16 timed by do_bench, or --dry's CPU."""
        from kernels.bench import cpu_ms, gpu_ms
        return (self.device, cpu_ms, torch.float32) if self.dry else \
            (self.device, gpu_ms, torch.bfloat16)

    def speed_rmsnorm(self):
        from kernels.bench import bench_rmsnorm
        device, timer, dtype = self.bench_args()
        rows, widths = (8, (96, 128)) if self.dry else (16384, (1792, 2048))  # 1B and 1.5B widths
        for C in widths:  # with the residual: what model.py runs between sub-blocks
            gbs = bench_rmsnorm(rows, C, dtype, device, timer, "aot_eager" if self.dry else "inductor")
            json.dump(gbs, open(os.path.join(self.logs, f"speed_rmsnorm_{C}.json"), "w"), indent=1)
            (fwd, bwd), (eager_f, eager_b), (comp_f, comp_b) = gbs.values()  # GB/s, fwd and bwd
            self.row("speed", f"RMSNorm+residual fwd, {rows}x{C}",
                     f"{fwd / 1e3:.2f} TB/s (eager {eager_f / 1e3:.2f}, compiled {comp_f / 1e3:.2f})",
                     f">= {RMS_FWD_GBS / 1e3} TB/s", verdict(fwd, RMS_FWD_GBS, self.dry))
            self.row("speed", f"RMSNorm+residual bwd, {rows}x{C}",
                     f"{bwd / comp_b:.2f}x compiled ({bwd / 1e3:.2f} vs {comp_b / 1e3:.2f} TB/s, "
                     f"eager {eager_b / 1e3:.2f})", f">= {RMS_BWD_X}x compiled F.rms_norm",
                     verdict(bwd / comp_b, RMS_BWD_X, self.dry))

    def speed_attention(self):
        from kernels.bench import bench_attention
        device, timer, dtype = self.bench_args()
        # (B, H, T, D): 16k tokens a batch, 14 heads of 128 as in pangu-1b-pro
        shapes = [(1, 2, 32, 16), (1, 2, 64, 16)] if self.dry else [(8, 14, 2048, 128),
                                                                     (2, 14, 8192, 128)]
        for B, H, T, D in shapes:
            tfs = bench_attention(B, H, T, D, dtype, device, timer)  # TFLOP/s, fwd and bwd
            json.dump(tfs, open(os.path.join(self.logs, f"speed_attention_{T}.json"), "w"), indent=1)
            (fwd, bwd), (sdpa_f, sdpa_b) = tfs.values()
            for way, ours, sdpa, target in (("fwd", fwd, sdpa_f, ATTN_FWD_X),
                                            ("bwd", bwd, sdpa_b, ATTN_BWD_X)):
                self.row("speed", f"attention {way}, B={B} H={H} T={T} D={D}",
                         f"{ours / sdpa:.2f}x SDPA flash ({ours:.0f} vs {sdpa:.0f} TFLOP/s)",
                         f">= {target}x SDPA flash", verdict(ours / sdpa, target, self.dry))

    def tiny(self):
        shape = [*DRY_MODEL, "--max_iters=3", "--batch_size=4", "--seq_len=64"] if self.dry else \
            ["--max_iters=50", "--batch_size=16", "--seq_len=256"]
        # every step logged: step 1 compares two forward passes of the same initial weights
        runs = {f"tiny_{name}": ["--preset=tiny", "--log_interval=1", "--warmup_iters=5",
                                 f"--use_kernels={name == 'on'}", *shape] for name in ("on", "off")}
        if self.dry:  # side by side: a toy run is all start-up
            self.train(runs)
        else:
            for name, extra in runs.items():
                self.train({name: extra})
        on, off = self.runs["tiny_on"]["rows"], self.runs["tiny_off"]["rows"]
        # the largest relative gap over the steps, not the final one alone: a gap may close again
        rel = max(abs(a["loss"] - b["loss"]) / b["loss"] for a, b in zip(on, off))
        self.row("tiny", f"train loss, kernels on vs off, {len(on)} steps",
                 f"max rel. diff {rel:.2%} (final {on[-1]['loss']:.3f} vs {off[-1]['loss']:.3f})",
                 f"<= {TINY_REL_TOL:.0%} (bf16 noise)",
                 verdict(rel, TINY_REL_TOL, self.dry, higher=False))

    def one_b(self, name, extra):
        shape = ["--preset=tiny", *DRY_MODEL, "--seq_len=64", "--batch_size=4", "--max_iters=3",
                 "--log_interval=1"] if self.dry else [*ONE_B, "--max_iters=20", "--log_interval=5"]
        # a short warmup: the lr does not change the speed, and 20 steps hold no long one. On a GPU one
        # run at a time (they are timed); --dry runs every 1b step asked for at the first, side by side
        wanted = {k: e for k, e in ONE_B_RUNS.items() if k in self.args.steps.split(",")} if self.dry else {}
        if f"1b_{name}" not in self.runs:
            self.train({k: [*shape, "--warmup_iters=2", *e] for k, e in {**wanted, f"1b_{name}": extra}.items()})
        run = self.runs[f"1b_{name}"]
        later = run["rows"][1:] or run["rows"]  # the first interval holds start-up and compilation
        # train.py measures both over its log intervals (5 steps): the median of the later ones
        tok_s = statistics.median(r["tok_per_s"] for r in later)
        mfu = statistics.median(r["mfu"] for r in later) if later[0]["mfu"] is not None else None
        peak = f"{run['peak'] / 2 ** 30:.1f} GiB" if run["peak"] > 0 else "n/a"
        self.row("1b", f"pangu-1b-pro, {ONE_B_LABELS[name]}" + (" (dry: tiny)" if self.dry else ""),
                 f"{tok_s:,.0f} tok/s, MFU {'n/a' if mfu is None else f'{mfu:.1%}'}, peak {peak}",
                 f"MFU >= {MFU:.0%}", verdict(mfu or 0, MFU, self.dry))

    def plan(self):
        shape = ["--preset=tiny", *DRY_MODEL, "--seq_len=64", "--batch_size=4"] if self.dry else ONE_B
        text = self.run({"plan": [sys.executable, "train.py", *shape, f"--data={self.shard}",
                                  "--dry_run", "--nproc=1"]})["plan"]
        total = re.search(r"^total\s+([\d.]+)\s+([\d.]+)", text, re.M)  # GiB: DDP, DDP + act_ckpt
        if total is None:
            raise RuntimeError("no 'total' row in train.py --dry_run's output; see logs/plan.txt")
        # one GPU: the plan's DDP column is a single process's memory, its +ckpt one with --act_ckpt
        for run, planned in (("on", float(total[1])), ("act_ckpt", float(total[2]))):
            peak = self.runs.get(f"1b_{run}", {}).get("peak", -1) / 2 ** 30
            measured = f"measured {peak:.1f} GiB ({peak / planned - 1:+.0%})" if peak > 0 else \
                "not measured"
            self.row("plan", f"peak memory, 1b {run}", f"{measured}, --dry_run plan {planned:.1f} GiB")

    def profile(self):
        """One training step of the 1B shape (bf16 autocast, fused AdamW), as train.py takes it."""
        from model import Transformer, model_config
        cfg = model_config("tiny", n_layer=2, vocab_size=320) if self.dry else \
            model_config("pangu-1b-pro", vocab_size=48064)
        B, T = (4, 64) if self.dry else (8, 2048)
        net = Transformer(cfg).to(self.device)  # kernels on, as model.py chooses them on CUDA
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=not self.dry)
        idx = torch.randint(0, cfg.vocab_size, (B, T + 1), device=self.device)  # tokens: any will do

        def step():
            with torch.autocast(self.device, torch.bfloat16, enabled=not self.dry):
                _, loss = net(idx[:, :-1], idx[:, 1:])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        for _ in range(2):  # warm-up: Triton compiles, the allocator settles
            step()
        activity = torch.profiler.ProfilerActivity
        with torch.profiler.profile(activities=[activity.CPU if self.dry else activity.CUDA]) as prof:
            step()
            if not self.dry:
                torch.cuda.synchronize()
        # self time: a kernel's own, not its callees' (a GPU kernel has none; a CPU op has many)
        key = "self_cpu_time_total" if self.dry else "self_device_time_total"
        events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)
        total = sum(getattr(e, key) for e in events)
        table = prof.key_averages().table(sort_by=key, row_limit=30)
        open(os.path.join(self.logs, "profile.txt"), "w").write(table)
        for i, e in enumerate(events[:5], 1):
            self.row("profile", f"#{i} of one 1B step's {'CPU ops' if self.dry else 'GPU kernels'}",
                     f"{e.key[:60]}: {getattr(e, key) / total:.1%} of the time")


# Most wanted first: the budget may stop the last ones. 1b_compile compiles twice (training, then
# train.py's final evaluation), a minute or more each for the 1B model.
STEPS = ["kernels", "speed_rmsnorm", "speed_attention", "tiny", "1b_off", "1b_on", "1b_act_ckpt",
         "plan", "profile", "1b_compile"]
ONE_B_RUNS = {"1b_off": ["--use_kernels=false"], "1b_on": [], "1b_act_ckpt": ["--act_ckpt=true"],
              "1b_compile": ["--compile=true"]}
ONE_B_LABELS = {"off": "kernels off", "on": "kernels on", "act_ckpt": "kernels on, --act_ckpt",
                "compile": "kernels on, --compile=true"}


def environment(dry):
    """Date, versions and device, for the table's heading."""
    import triton
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "torch": torch.__version__, "triton": triton.__version__, "CUDA": torch.version.cuda}
    if dry:
        return {**info, "device": "CPU (--dry: toy sizes, Triton interpreter; no figure is a speed)"}
    # torch knows the CUDA it was built with, not the driver: nvidia-smi does
    smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True)
    return {**info, "device": torch.cuda.get_device_name(), "driver": smi.stdout.strip() or "?"}


def main(argv=None):
    p = argparse.ArgumentParser(description="Issue 21's GPU check: one table of kernel, training "
                                            "and 1B figures.")
    p.add_argument("--out", default="out/gpu_check",
                   help="folder for table.md, results.json, logs/ (default %(default)s)")
    p.add_argument("--dry", action="store_true", help="every step at toy size on CPU (default off)")
    p.add_argument("--budget", type=float, default=420,
                   help="seconds; no step starts after, subprocesses stop (default %(default)s)")
    p.add_argument("--steps", default=",".join(STEPS), help="a comma-separated subset of %(default)s")
    args = p.parse_args(argv)
    steps = args.steps.split(",")
    if set(steps) - set(STEPS) or not args.budget > 0:
        p.exit(2, f"gpu_check.py: error: --steps takes names from {','.join(STEPS)}; "
                  f"--budget must be > 0\n")
    if not args.dry and not torch.cuda.is_available():
        p.exit(2, "gpu_check.py: error: no CUDA GPU here; --dry checks the script on CPU\n")
    if args.dry:  # in-process steps (speed, profile) too; subprocesses get it from Check.env
        os.environ["TRITON_INTERPRET"] = "1"  # before kernels/ imports triton
    # the options are sound: from here on, every failure is a row of the table
    check, env = Check(args), environment(args.dry)
    check.shard = make_shard(os.path.join(args.out, "shard"), args.dry)
    for name in [s for s in STEPS if s in steps]:
        t0 = time.time()
        if t0 > check.deadline:
            check.row(name, "not run", f"--budget={args.budget:.0f}s spent", result="SKIP")
            continue
        try:
            if name in ONE_B_RUNS:
                check.one_b(name[3:], ONE_B_RUNS[name])
            else:
                getattr(check, name)()
        except Exception as e:  # recorded, and the next step runs
            check.row(name, "error", f"{type(e).__name__}: {str(e)[:200]}", result="FAIL")
        print(f"gpu_check: {name} done in {time.time() - t0:.0f}s", flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # what an in-process step cached, free for the next subprocess

    # the table: a heading with the versions, then markdown rows to paste into README's Performance
    heading = " · ".join(f"{k} {v}" for k, v in env.items())
    table = [f"GPU check ({heading})", "", "| step | measure | measured | target | result |",
             "|---|---|---|---|---|"]
    table += [f"| {r['step']} | {r['measure']} | {r['value']} | {r['target']} | {r['result']} |"
              for r in check.rows]
    open(os.path.join(args.out, "table.md"), "w").write("\n".join(table) + "\n")
    json.dump({"environment": env, "rows": check.rows},
              open(os.path.join(args.out, "results.json"), "w"), indent=1)
    print("\n".join(table))
    return 1 if any(r["result"] == "FAIL" for r in check.rows) else 0  # a MISS is a finding, not an error


if __name__ == "__main__":
    sys.exit(main())
