"""reproduce.py: the seed rule, the verdicts, and the whole script on a toy budget — the results page's
structure (not its numbers), resuming finished and interrupted runs, one-line errors."""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import reproduce  # noqa: E402


def fake_runs(monkeypatch, bpb, seeds):
    """reproduce.train replaced by a table {(name, seed index): bpb}; returns the list of calls made."""
    calls = []

    def train(name, n_steps, seed, **spec):
        calls.append((name, seed - 1337))
        return {"bpb": bpb[name, seed - 1337]}
    monkeypatch.setattr(reproduce, "train", train)
    monkeypatch.setattr(reproduce, "A", argparse.Namespace(seeds=seeds, seed=1337))
    return calls


def test_second_seeds_run_exactly_where_a_difference_is_within_twice_the_spread(monkeypatch):
    bpb = {("ref", 0): 3.00, ("ref", 1): 3.10, ("near", 0): 3.24, ("near", 1): 3.20,
           ("far", 0): 3.26, ("better", 0): 2.84}
    calls = fake_runs(monkeypatch, bpb, seeds=2)
    vs = [reproduce.Variant(n, n, 10) for n in ("ref", "near", "far", "better")]
    spread = reproduce.settle(vs, vs[0])
    # ref: mean 3.05, spread 0.10 -> second seeds for |diff| < 0.20: near (0.19) yes; far (0.21), better (0.21) no
    assert spread == pytest.approx(0.10)
    assert sorted(calls) == [("better", 0), ("far", 0), ("near", 0), ("near", 1), ("ref", 0), ("ref", 1)]
    assert vs[1].cell == "3.220 ± 0.020" and vs[2].cell == "3.260"


def test_one_seed_means_no_spread_and_no_second_runs(monkeypatch):
    calls = fake_runs(monkeypatch, {("ref", 0): 3.0, ("x", 0): 3.0}, seeds=1)
    vs = [reproduce.Variant(n, n, 10) for n in ("ref", "x")]
    assert reproduce.settle(vs, vs[0]) is None and sorted(calls) == [("ref", 0), ("x", 0)]


def test_verdicts_say_reproduces_fails_or_inconclusive():
    assert reproduce.verdict(-0.05, 0.01, "yes", "no") == "**Reproduces** (-0.050 bpb, seed spread 0.010): yes"
    assert reproduce.verdict(0.05, 0.01, "yes", "no") == "**Does not reproduce** (+0.050 bpb, seed spread 0.010): no"
    assert reproduce.verdict(-0.019, 0.01, "yes", "no").startswith("**Inconclusive at this scale**")
    assert reproduce.verdict(0.001, None, "yes", "no") == "**Does not reproduce** (+0.001 bpb, one seed): no"


def test_bad_options_are_one_line_errors():
    for bad in ("--only=tokeniser", "--scale=0", "--seeds=3", "--corpus=/no/such/file.txt"):
        r = subprocess.run([sys.executable, "reproduce.py", bad], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("reproduce.py: error:"), (bad, r.stderr)


# The whole script on a toy budget: every study, every variant, a few steps each (~35 processes).
ROWS = {"1. Compact tokenizer": 6, "2. Architecture": 5, "3. Parameter inheritance": 11, "4. Multiple-round": 4,
        "5. Batch size": 3, "6. All together": 1}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reproduce")
    cmd = [sys.executable, "reproduce.py", "--quick", "--scale=0.01", f"--work={tmp / 'work'}",
           f"--page={tmp / 'docs' / 'RESULTS.md'}"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp, cmd


def sections(page):
    return re.split(r"\n(?=## )", page)


def test_toy_run_writes_every_study_with_claim_table_plot_and_verdict(toy):
    tmp, _ = toy
    page = (tmp / "docs" / "RESULTS.md").read_text()
    head, *studies = sections(page)
    assert "`python reproduce.py --quick --scale=0.01" in head and str(datetime.date.today()) in head
    assert re.search(r"git commit [0-9a-f]{7}", head) and "Machine:" in head and "Seeds 1337;" in head
    assert len(studies) == 6
    for study, (title, n_rows) in zip(studies, ROWS.items()):
        assert study.startswith("## " + title), study[:80]
        assert "**Paper.**" in study and "PAPER.md" in study and "**Here.**" in study
        table = [line for line in study.splitlines() if line.startswith("|")]
        assert len(table) >= 2 + n_rows and table[1].startswith("|---|"), (title, table)
        assert len({line.count("|") for line in table}) == 1, f"{title}: ragged table"
        verdict = study.split("**Verdict.** ")[1]
        assert verdict.startswith(("**Reproduces**", "**Does not reproduce**", "**Inconclusive at this scale**"))
        images = re.findall(r"!\[[^]]*\]\((results/[^)]+\.png)\)", study)
        try:
            import matplotlib  # noqa: F401
            assert len(images) == 1 and os.path.getsize(tmp / "docs" / images[0]) > 1000, title
        except ImportError:
            assert not images and "matplotlib is not installed" in study
    if os.path.isdir(reproduce.os.path.join(reproduce.SHARED, "eval")):   # benchmarks beside chance
        assert re.search(r"\| hellaswag acc \(n=\d+\) \| 0\.250 \|", studies[5])


def test_rerun_skips_finished_runs_and_resumes_an_interrupted_one(toy):
    tmp, cmd = toy
    runs = tmp / "work" / "runs"
    results = {d: (runs / d / "result.json").stat().st_mtime_ns for d in os.listdir(runs)}
    victim = runs / "batch64-r0.5-s1337"                 # "interrupted": its checkpoint is there, no result
    before, n_log = json.loads((victim / "result.json").read_text()), len(open(victim / "log.jsonl").readlines())
    (victim / "result.json").unlink()
    r = subprocess.run(cmd + ["--only=batch"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    after = {d: (runs / d / "result.json").stat().st_mtime_ns for d in os.listdir(runs)}
    assert after.keys() == results.keys()
    assert [d for d in after if after[d] != results[d]] == [victim.name]
    assert len(open(victim / "log.jsonl").readlines()) == n_log          # resumed at its end: no step re-trained
    assert json.loads((victim / "result.json").read_text())["curve"] == before["curve"]
