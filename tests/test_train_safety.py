"""train.py never runs a stranger's code, never loses or mixes up a run, logs a resumed run like an
uninterrupted one, round 2 is one pass over its selection, bad inputs get one-line errors, curves.png."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import curves
import train
from conftest import make_shards

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--n_layer=1", "--n_embd=32", "--n_head=2", "--block_size=16", "--batch_size=2", "--warmup_iters=2",
         "--eval_iters=2", "--log_interval=2", "--sample_tokens=0", "--lr=1e-2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    lines = ["To be, or not to be, that is the question.", "All the world's a stage.", "Now is the winter."]
    docs = ["\n".join(lines[(i + j) % 3] for j in range(20)) for i in range(8)]
    return make_shards(tmp_path_factory.mktemp("corpus"), docs, K=300)


def run(data, out, *args):
    train.main([f"--data={data}", f"--out_dir={out}", *SMALL, *args])
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


class Evil:
    def __reduce__(self):
        return os.system, (f"echo pwned > {Evil.sentinel}",)


def test_a_malicious_checkpoint_never_runs(data, tmp_path):
    Evil.sentinel = tmp_path / "PWNED"
    torch.save({"model": {}, "model_config": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="--trust_checkpoint") as e:
        run(data, tmp_path / "out", f"--init_from={tmp_path / 'evil.pt'}")
    assert not Evil.sentinel.exists() and "\n" not in str(e.value)


def test_an_old_checkpoint_resumes_with_trust_and_is_saved_plain(data, tmp_path):
    run(data, tmp_path, "--max_iters=2", "--eval_interval=2")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    name, keys, *rest = ckpt["rng"]["numpy"]                              # the old form: numpy's tuple with an ndarray
    ckpt["rng"]["numpy"] = (name, np.array(keys, dtype=np.uint32), *rest)
    torch.save(ckpt, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="--trust_checkpoint"):
        run(data, tmp_path, "--max_iters=4", "--eval_interval=2", "--init_from=resume")
    run(data, tmp_path, "--max_iters=4", "--eval_interval=2", "--init_from=resume", "--trust_checkpoint")
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["step"] == 4        # plain again


def rows(log, kind):
    return [{k: v for k, v in r.items() if k not in ("tok_per_s", "mfu")} for r in log if kind in r]


def test_tokens_per_second_leave_out_evaluations(data, tmp_path, monkeypatch):
    """An evaluation (here: 0.5 s) between two log rows is not training time: tokens/s, and the train
    seconds reproduce.py sums from them for its equal-time reads, must not depend on how often a run evaluates."""
    evaluate = train.evaluate
    monkeypatch.setattr(train, "evaluate", lambda run: time.sleep(0.5) or evaluate(run))
    log = run(data, tmp_path, "--max_iters=4", "--eval_interval=1", "--log_interval=2")
    windows = [2 * 2 * 16 / r["tok_per_s"] for r in log if "tok_per_s" in r]     # 2 steps of 2 x 16 tokens
    assert len(windows) == 2 and max(windows) < 0.45                             # the second held 2 evals


def test_resumed_log_equals_the_uninterrupted_log_in_round_2_with_grad_accum(data, tmp_path):
    """Halted at step 3 of round 2 (a log every 2 steps, 2 micro-steps a step), resumed: every train row,
    loss included, is the uninterrupted run's; the partial log window travelled in the checkpoint."""
    args = ["--rounds=2", "--max_iters=6", "--refine_iters=6", "--grad_accum=2", "--eval_interval=100",
            "--refine=topk"]
    full = run(data, tmp_path / "a", *args)
    run(data, tmp_path / "b", *args, "--halt_at=9")
    resumed = run(data, tmp_path / "b", *args, "--init_from=resume")
    assert rows(resumed, "loss") == rows(full, "loss") and len(rows(full, "loss")) == 6
    assert [r["tokens"] for r in rows(full, "loss")] == [2 * 2 * 16 * s for s in (2, 4, 6, 8, 10, 12)]
    assert rows(resumed, "val_loss")[-1] == rows(full, "val_loss")[-1]


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_without_logging_a_step_twice(data, tmp_path):
    # train.py as a process, without its curves.png (matplotlib at each of 30 evaluations: most of the run)
    no_curves = ("import curves, runpy, sys; curves.draw = lambda run_dirs, png_path: None; "
                 "sys.argv[0] = 'train.py'; runpy.run_path('train.py', run_name='__main__')")
    cmd = [sys.executable, "-c", no_curves, f"--data={data}", f"--out_dir={tmp_path}", *SMALL, "--max_iters=60",
           "--eval_interval=2", "--log_interval=1"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = tmp_path / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or log.read_text().count('"loss"') < 7):
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)["step"]
    killed_at = max(json.loads(line)["step"] for line in log.read_text().splitlines() if line.endswith("}"))
    resumed = run(data, tmp_path, "--max_iters=60", "--eval_interval=2", "--log_interval=1", "--init_from=resume")
    steps = [r["step"] for r in resumed if "loss" in r]
    assert steps == list(range(1, 61))                                   # each step once, in order
    if killed_at > saved:                                                # rows written after the last checkpoint
        orphaned = [json.loads(line)["step"] for line in open(str(log) + ".orphaned")]
        assert min(orphaned) == saved + 1


def test_round_2_is_one_pass_over_the_selection_by_default(data, tmp_path):
    log = run(data, tmp_path, "--rounds=2", "--max_iters=3", "--eval_interval=100", "--log_interval=1")
    selected = np.load(tmp_path / "round2_selection.npy")
    assert [r["step"] for r in log if r["round"] == 2 and "loss" in r] == list(range(1, len(selected) + 1))
    assert len(selected) != 3                                           # not --max_iters steps


def test_a_fresh_run_keeps_the_previous_run_aside(data, tmp_path, capsys):
    run(data, tmp_path, "--max_iters=2", "--eval_interval=2")
    before = (tmp_path / "ckpt.pt").read_bytes()
    np.save(tmp_path / "round2_selection.npy", np.array([0]))            # a stale 1-batch selection
    log = run(data, tmp_path, "--max_iters=4", "--eval_interval=2", "--rounds=2")
    (aside,) = glob.glob(str(tmp_path / "old-*"))
    assert open(os.path.join(aside, "ckpt.pt"), "rb").read() == before and "moved its files" in capsys.readouterr().out
    assert len(np.load(tmp_path / "round2_selection.npy")) == 2 and [r["round"] for r in log][0] == 1   # a clean log


def test_a_stale_selection_of_another_run_is_not_reused(data, tmp_path):
    args = ["--rounds=2", "--max_iters=2", "--refine_iters=1", "--eval_interval=100", "--refine=topk"]
    run(data, tmp_path / "a", *args, "--sampling_rate=0.1")
    run(data, tmp_path / "b", *args, "--halt_at=2")                        # stops at the end of round 1
    for f in ("round2_selection.npy", "round2_selection.json", "round2_batch_losses.npy"):
        os.replace(tmp_path / "a" / f, tmp_path / "b" / f)                 # files of another run (and rate)
    run(data, tmp_path / "b", *args, "--init_from=resume")
    summary = json.load(open(tmp_path / "b" / "round2_selection.json"))
    assert summary["sampling_rate"] == 0.5 and summary["selected"]["n"] == len(np.load(tmp_path / "b" / "round2_selection.npy"))


def write_meta(data, tmp_path, **changes):
    import shutil
    bad = tmp_path / "bad_data"
    shutil.copytree(data, bad)
    meta = json.load(open(bad / "meta.json"))
    for key, value in changes.items():
        if value is None:
            del meta[key]
        elif key == "tokenizer":
            meta[key].update(value)
        else:
            meta[key] = value
    json.dump(meta, open(bad / "meta.json", "w"))
    return bad


CASES = [   # (options, or a callable making them from (data, tmp_path)), a piece of the one-line error
    (["--tie_embeddings=ture"], "is not a boolean"), (["--dry_run=maybe"], "is not a boolean"),
    (["--dry_run", "--batch_size=3", "--nproc=8", "--preset=pangu-1b-pro"], "micro-batch of 0"),
    (["--init_from=resume", "--preset=small"], "does nothing with --init_from"),
    (["--sample_tokens=5", "--sample_prompt=" + "to be or not " * 20], "shorten it"),
    (["--batch_size=2.5"], "write a whole number"), (["--device=banana"], "choose auto, cpu"),
    (["--block_size=100000000"], "fewer than one batch"),
    (lambda d, t: [f"--data={write_meta(d, t, dtype='float64')}"], "dtype must be uint16 or uint32"),
    (lambda d, t: [f"--data={write_meta(d, t, splits=None)}"], "field 'splits' is missing"),
    (lambda d, t: [f"--data={write_meta(d, t, tokenizer={'n_vocab': 10})}"], "holds ids >= its tokenizer's 10"),
    (lambda d, t: [str((t / "list.json").write_text("[1, 2]") and t / "list.json")], "holds a JSON list"),
    (lambda d, t: [f"--out_dir={(t / 'file').write_text('x') and t / 'file'}"], "is a file"),
]
if not torch.cuda.is_available():
    CASES.append((["--device=cuda"], "no CUDA GPU is visible"))          # model.resolve_device


@pytest.mark.parametrize("options, message", CASES)
def test_bad_inputs_get_one_line_errors(data, tmp_path, options, message):
    options = options(data, tmp_path) if callable(options) else options
    with pytest.raises(ValueError, match=message) as e:
        train.main([f"--data={data}", f"--out_dir={tmp_path / 'out'}", *SMALL, "--max_iters=1", *options])
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out" / "ckpt.pt").exists()                      # refused before any work


@pytest.mark.slow          # a few seconds: the full suite runs it, the fast lane does not
def test_ctrl_c_says_how_to_resume(data, tmp_path):
    r = subprocess.Popen([sys.executable, "train.py", f"--data={data}", f"--out_dir={tmp_path}", *SMALL,
                          "--max_iters=100000"], cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "log.jsonl").exists():
        time.sleep(0.05)
    r.send_signal(signal.SIGINT)
    err = r.communicate(timeout=60)[1]
    assert r.returncode != 0 and "--init_from=resume" in err and "Traceback" not in err


@pytest.mark.draws_curves
def test_curves_png_after_a_run_and_nothing_fails_without_matplotlib(data, tmp_path, monkeypatch, capsys):
    run(data, tmp_path / "a", "--max_iters=4", "--eval_interval=2")
    png = (tmp_path / "a" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert curves.draw([tmp_path / "a"], tmp_path / "x.png") is None and "pip install matplotlib" in capsys.readouterr().out
    run(data, tmp_path / "c", "--max_iters=2", "--eval_interval=2", "--curves=false")     # asked not to draw
    monkeypatch.setattr(train, "find_spec", lambda name: None)
    run(data, tmp_path / "b", "--max_iters=2", "--eval_interval=2")
    assert not (tmp_path / "b" / "curves.png").exists() and not (tmp_path / "c" / "curves.png").exists()
