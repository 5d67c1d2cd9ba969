"""reproduce.py: the statistics (pooled σ, paired Δ and SE, the seed rule), verdict wording from the numbers,
study 6's zero-shot rows (baselines, margin, below chance) on synthetic numbers, one-line errors, a partial
run never clobbering the full page, Ctrl-C, sh() on a real process; and (slow) the whole script on a toy
budget, its scripts run in-process: every study's section, verdicts re-derived from the page's numbers, and a
rerun that retrains nothing but resumes the one interrupted run."""
import argparse
import contextlib
import json
import math
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import reproduce  # noqa: E402
from forks import Forks  # noqa: E402


def fake_runs(monkeypatch, bpb, seeds=2, max_seeds=4):
    """reproduce.train replaced by a table {(name, seed index): bpb}; returns the list of calls made."""
    calls = []

    def train(name, n_steps, seed, **spec):
        calls.append((name, seed - 1337))
        return {"bpb": bpb[name, seed - 1337]}
    monkeypatch.setattr(reproduce, "train", train)
    monkeypatch.setattr(reproduce, "OPTS", argparse.Namespace(seeds=seeds, max_seeds=max_seeds, seed=1337,
                                                              work=os.path.join(ROOT, "no-such-work")))
    reproduce.REPEATS.clear()
    return calls


def test_pooled_sigma_is_the_pooled_variance_over_repeated_configurations(monkeypatch):
    fake_runs(monkeypatch, {("a", 0): 1.0, ("a", 1): 1.2, ("b", 0): 2.0, ("b", 1): 2.1, ("b", 2): 2.5,
                            ("c", 0): 9.0})
    for name, n in (("a", 2), ("b", 3), ("c", 1)):
        reproduce.run_all([(reproduce.Variant(name, name, 10), n)])
    # by hand: a: 2 x 0.1² = 0.02 (1 df); b: mean 2.2, 0.04 + 0.01 + 0.09 = 0.14 (2 df); c: one seed, left out
    sigma, df = reproduce.pooled_sigma()
    assert df == 3 and sigma == pytest.approx(math.sqrt(0.16 / 3))


def test_jobs_run_side_by_side_and_results_keep_seed_order(monkeypatch):
    """--jobs=2: the missing (variant, seed) runs go two at a time, each once, though asked for twice; each
    variant's results land in seed order whatever order the runs end in; rule 2's pool gets them all."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    calls = fake_runs(monkeypatch, {(n, i): 2.0 + i / 10 for n in "ab" for i in range(3)})
    pair, fake = threading.Barrier(2, timeout=5), reproduce.train
    def train(name, n_steps, seed, **spec):
        pair.wait()                        # two runs at once, or BrokenBarrierError (one at a time)
        time.sleep(0.05 * (3 - (seed - 1337)))    # the later seed finishes first: order must not follow time
        return fake(name, n_steps, seed)
    monkeypatch.setattr(reproduce, "train", train)
    monkeypatch.setattr(reproduce, "POOL", ThreadPoolExecutor(2))
    a, b = reproduce.Variant("a", "a", 1), reproduce.Variant("b", "b", 1)
    assert reproduce.run_all([(a, 3), (b, 1), (a, 2)]) == [a, b, a]      # 4 runs: two pairs
    assert [r["bpb"] for r in a.res] == [2.0, 2.1, 2.2] and [r["bpb"] for r in b.res] == [2.0]
    assert sorted(calls) == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]
    assert reproduce.REPEATS == {"a": {1337: 2.0, 1338: 2.1, 1339: 2.2}, "b": {1337: 2.0}}


def test_finished_runs_are_read_here_and_a_lone_missing_run_trains_alone(monkeypatch, tmp_path):
    """Only runs still to train go to the --jobs pool, and only two or more: one alone runs in the main
    thread (sh() then gives it every core), as study 6's baseline seed 2 after Pro's seeds."""
    import threading
    fake_runs(monkeypatch, {("a", 0): 2.0, ("a", 1): 2.1, ("a", 2): 2.2, ("b", 0): 3.0})
    reproduce.OPTS.work = str(tmp_path)
    os.makedirs(tmp_path / "runs" / "a-s1337")
    (tmp_path / "runs" / "a-s1337" / "result.json").write_text("{}")     # finished: a read, no job
    where, pooled, fake = [], [], reproduce.train
    monkeypatch.setattr(reproduce, "train", lambda name, n, seed, **spec: where.append(
        (seed - 1337, threading.current_thread() is threading.main_thread())) or fake(name, n, seed))
    class Pool:                            # records what it is given, runs it here
        map = staticmethod(lambda f, items: pooled.append(len(items)) or map(f, items))
    monkeypatch.setattr(reproduce, "POOL", Pool())
    a = reproduce.Variant("a", "a", 1)
    reproduce.run_all([(a, 2)])
    assert where == [(0, True), (1, True)] and pooled == []           # 1 read + 1 alone: no pool
    reproduce.run_all([(a, 3), (reproduce.Variant("b", "b", 1), 1)])    # two missing: the pool, at once
    assert pooled == [2] and [r["bpb"] for r in a.res] == [2.0, 2.1, 2.2]


def test_a_run_folder_is_trained_by_one_job_at_a_time_and_others_go_side_by_side(monkeypatch):
    """train()'s lock: two jobs asking for one run (study 4's arms, each forking the seed's round 1) take turns,
    so it is trained once; two different runs overlap (each waits, with a timeout, until the other is in)."""
    import threading
    monkeypatch.setattr(reproduce, "OPTS", argparse.Namespace(work="w", jobs=2))
    entered = {"x": threading.Event(), "y": threading.Event()}
    inside, same, both = {"x": 0, "y": 0}, [], []
    def body(out, name, *args):
        inside[name] += 1
        same.append(inside[name])
        entered[name].set()
        entered["y" if name == "x" else "x"].wait(timeout=5)
        both.append(sum(inside.values()))
        inside[name] -= 1
    monkeypatch.setattr(reproduce, "_train", body)
    threads = [threading.Thread(target=reproduce.train, args=(n, 1, 1)) for n in ("x", "x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(same) == 1 and max(both) == 2 and inside == {"x": 0, "y": 0}


def test_paired_differences_cancel_what_a_seed_shares(monkeypatch):
    # each seed shifts both arms alike (its data order); the arms differ by exactly -0.1 at every seed
    bpb = {("x", s): 2.0 + off - 0.1 for s, off in enumerate((0.0, 0.3, -0.2))}
    bpb.update({("y", s): 2.0 + off for s, off in enumerate((0.0, 0.3, -0.2))})
    fake_runs(monkeypatch, bpb)
    x, y = reproduce.run_all([(reproduce.Variant(n, n, 10), 3) for n in "xy"])
    delta, se, n = reproduce.paired([x], [y])
    assert (delta, n) == (pytest.approx(-0.1), 3) and se == pytest.approx(0, abs=1e-12)


def test_seed_rule_adds_seeds_while_8_sigma2_over_delta2_asks_and_stops_at_the_cap(monkeypatch):
    # σ from the arms themselves; Δ ≈ -0.05 with σ ≈ 0.07: 8σ²/Δ² ≈ 16 seeds wanted -> capped at 4
    noise = (0.0, 0.1, -0.05, 0.08, 0.0, 0.0)
    bpb = {("x", s): 2.95 + noise[s] for s in range(6)}
    bpb.update({("y", s): 3.0 + noise[5 - s] for s in range(6)})
    calls = fake_runs(monkeypatch, bpb, seeds=2, max_seeds=4)
    delta, se, n = reproduce.decide(reproduce.Variant("x", "x", 10), reproduce.Variant("y", "y", 10))
    assert n == 4 and sorted(calls) == sorted((a, s) for a in "xy" for s in range(4))
    assert abs(delta) <= 2 * se
    # a clear difference stops at --seeds: |Δ| = 0.5 > 2 SE already
    calls = fake_runs(monkeypatch, {(a, s): (2.0 if a == "x" else 2.5) + 0.01 * s for a in "xy" for s in range(4)})
    assert reproduce.decide(reproduce.Variant("x", "x", 10), reproduce.Variant("y", "y", 10))[2] == 2


@pytest.mark.parametrize("delta, se, word", [
    (-0.05, 0.01, "**Reproduces**"),                      # paper's sign, |Δ| = 5 SE
    (0.05, 0.01, "**Does not reproduce**"),               # opposite sign, |Δ| = 5 SE
    (-0.019, 0.01, "**Inconclusive at this scale**"),     # |Δ| < 2 SE
    (0.02, 0.01, "**Inconclusive at this scale**"),       # |Δ| = 2 SE exactly: not above
    (-0.3, None, "**Inconclusive at this scale**"),       # no SE (one seed, no σ): never a verdict
])
def test_verdict_wording_follows_from_its_numbers(delta, se, word):
    line = reproduce.verdict("a vs b", (delta, se, 3), "yes", "no")
    assert line.startswith("**Verdict** (a vs b). " + word) and f"Δ = {delta:+.3f} bpb" in line
    assert "3 seed(s)" in line and verdict_follows(line)
    assert ("SE unknown" if se is None else f"SE {se:.3f}") in line


def verdict_follows(line):
    """The check a page's verdict must pass: its word from its own Δ and SE."""
    m = re.search(r"\*\*(Reproduces|Does not reproduce|Inconclusive at this scale)\*\* \(Δ = ([-+][\d.]+) bpb, "
                  r"SE (unknown|[\d.]+), (\d+) seed", line)
    word, delta, se = m[1], float(m[2]), None if m[3] == "unknown" else float(m[3])
    clear = se is not None and abs(delta) > 2 * se
    return word == ("Reproduces" if clear and delta < 0 else "Does not reproduce" if clear else
                    "Inconclusive at this scale")


def test_zero_shot_rows_show_the_baselines_and_never_call_a_score_below_chance_noise():
    # by hand: boolq base 0.30 is 0.20 under chance, > 2 x 0.046 -> below; Pro 0.62: 0.12 > 2 x 0.048 -> above;
    # piqa base 0.52: 0.02 < 2 x 0.05 -> within; Pro 0.70: 0.20 > 2 x 0.046 -> above. Margin SE: hypot(0.1, 0.1)
    base = {"boolq": {"n": 100, "acc": 0.30, "acc_stderr": 0.046, "chance": 0.5, "label_prior": 0.7, "shortest": 0.5,
                      "margin": -0.5, "margin_stderr": 0.1},
            "piqa": {"n": 100, "acc": 0.52, "acc_stderr": 0.05, "chance": 0.5}}      # eval.py without the new keys
    pro = {"boolq": {"n": 100, "acc": 0.62, "acc_stderr": 0.048, "chance": 0.5, "margin": 0.1, "margin_stderr": 0.1},
           "piqa": {"n": 100, "acc": 0.70, "acc_stderr": 0.046, "chance": 0.5}}
    rows, sentence = reproduce.zero_shot(base, pro)
    assert rows == [["boolq acc (n=100)", "0.500", "0.700", "0.500", "0.300 ± 0.046 ▼", "0.620 ± 0.048 ▲"],
                    ["boolq margin, nats (n=100)", "–", "–", "Pro − baseline: +0.600 ± 0.141", "-0.500 ± 0.100",
                     "0.100 ± 0.100"],
                    ["piqa acc (n=100)", "0.500", "–", "–", "0.520 ± 0.050", "0.700 ± 0.046 ▲"]]
    assert sentence.startswith("2 of 4 scores lie more than 2 SE above chance (▲); 1 more than 2 SE below (▼): "
                               "not noise")
    assert sentence.endswith("the other 1 are within 2 SE of chance: noise here.")
    assert sentence.count("noise") == 2            # "not noise" for the one below; "noise" only for those within
    # nothing below chance: no sentence about it; a task the other arm lacks is left out
    rows, sentence = reproduce.zero_shot({"piqa": base["piqa"], "sciq": base["piqa"]}, {"piqa": pro["piqa"]})
    assert len(rows) == 1 and "below" not in sentence and sentence.startswith("1 of 2 scores")


@pytest.mark.parametrize("argv, messages", [
    (["--only=tokeniser"], ["--only: unknown study 'tokeniser'"]),
    (["--scale=0"], ["--scale must be in (0, 4]"]),
    (["--jobs=0"], ["--jobs must be >= 1"]),
    (["--seeds=3", "--max_seeds=2"], ["--seeds must be in 1..--max_seeds (2)"]),
    (["--only=x", "--scale=9", "--seeds=0"], ["unknown study 'x'", "--scale must", "--seeds must"]),  # one each
])
def test_bad_options_are_one_line_errors_one_per_option(argv, messages, capsys):
    with pytest.raises(SystemExit) as e:
        reproduce.main(argv)
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]   # not the usage
    assert e.value.code == 2 and len(lines) == len(messages)
    assert all(line.startswith("reproduce.py: error: ") and m in line for line, m in zip(lines, messages))


def test_a_partial_run_writes_its_own_page_and_never_clobbers_a_full_one(tmp_path, monkeypatch):
    assert reproduce.parse_args(["--only=rounds"]).page.endswith(os.path.join("docs", "RESULTS-only-rounds.md"))
    assert reproduce.parse_args([]).page.endswith(os.path.join("docs", "RESULTS.md"))
    full = tmp_path / "RESULTS.md"
    full.write_text("# page\n\n## 1. Compact tokenizer\n\n## 4. Multiple-round training\n")
    before = full.read_bytes()
    with pytest.raises(SystemExit) as e:
        reproduce.main(["--only=rounds", f"--page={full}", f"--work={tmp_path / 'w'}"])
    assert str(e.value).startswith("reproduce.py: error: ") and "Compact tokenizer" in str(e.value)
    assert full.read_bytes() == before and not (tmp_path / "w").exists()          # checked before any work
    # the same one-study page may be rewritten (the README's command, run twice): only what it holds
    monkeypatch.setattr(reproduce, "heldout", lambda: None)
    monkeypatch.setattr(reproduce, "study_rounds", lambda: "## 4. Multiple-round training\n\nnew")
    monkeypatch.setattr(reproduce, "header", lambda *a: "# page\n")
    one = tmp_path / "RESULTS-only-rounds.md"
    for _ in range(2):
        reproduce.main(["--only=rounds", f"--page={one}", f"--work={tmp_path / 'w'}"])
    assert one.read_text().endswith("new\n") and full.read_bytes() == before
    # a run of every study replaces any page, one whose sections were titled otherwise too (an older version's)
    full.write_text("# page\n\n## 1. Compact tokenizer (§3.1)\n\n## 2. Architecture tweak (§3.2)\n")
    for s in reproduce.STUDIES:
        monkeypatch.setattr(reproduce, "study_" + s, lambda s=s: f"## {reproduce.STUDIES[s]}\n\nnew {s}")
    reproduce.main([f"--page={full}", f"--work={tmp_path / 'w'}"])
    assert "§3.1" not in full.read_text() and full.read_text().count("\n\nnew ") == 6


def test_ctrl_c_is_one_line_saying_how_to_resume(tmp_path, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(reproduce, "heldout", interrupted)
    with pytest.raises(SystemExit) as e:
        reproduce.main(["--only=batch", f"--work={tmp_path}", f"--page={tmp_path / 'p.md'}"])
    assert str(e.value) == ("reproduce.py: error: interrupted; run the same command again to resume "
                            "(finished runs are kept)")


def test_a_finished_run_made_by_other_options_is_refused_not_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "OPTS", argparse.Namespace(work=str(tmp_path), jobs=1))
    out = tmp_path / "runs" / "x-s1"
    out.mkdir(parents=True)
    (out / "result.json").write_text(json.dumps({"bpb": 2.0, "recipe": "old"}))
    with pytest.raises(SystemExit, match="was made by other options"):
        reproduce.train("x", 10, 1)


# ---- the whole script on a toy budget ---------------------------------------------------------------
# Every study function runs end to end on the real scripts, at --scale=0.001 (2 steps a run; a 12 KB corpus) with each
# study's grid cut to the rows its code needs (one or two of each kind), models of 2-4 layers of 32-64
# channels and steps of 4 x 32 tokens (the code paths are the same; only the arithmetic shrinks), and the
# scripts run IN this process (runpy, their own argv): a Python + torch start costs 3-5 s, and the toy run
# calls 47 scripts (15 train.py, 20 eval.py, 4 inherit.py, 4 tokenizer_compress.py, 4 prepare.py), the rerun
# 2 more. The real subprocess path (sh) has its own test with a tiny script.
TOY_SHAPES = dict(BASE=(2, 32, 2, 8 / 3), DEEP=(3, 48, 3, 8 / 3), SOURCE=(4, 64, 4, 8 / 3))   # heads of 16
TOY_GRIDS = dict(VOCABS=("1k", "8k"), LR_SWEEP=(1,), LAYERS=("first",), WIDTHS=("l1",), ROUND2={}, BATCHES=(2,),
                 POWERS=(0, 0.5), BATCH=4, ROUNDS_BATCH=2, SEQ=32, SHAPES={"base 4x128": TOY_SHAPES["BASE"],
                                                           "deep-thin 12x96": TOY_SHAPES["DEEP"]}, **TOY_SHAPES)
TOY_ROWS = {"1. Compact tokenizer": 3, "2. Architecture tweak": 2, "3. Parameter inheritance": 4,
            "4. Multiple-round training": 3, "5. Batch size and learning rate": 1, "6. All together": 1}


def in_process(calls):
    """A stand-in for forks.Forks that runs `python SCRIPT ARGS` as runpy in this process, its output
    appended to the log file; exit codes as a process would give them. Appends each script to `calls`."""
    def call(argv, out, err=None, threads=None):
        import runpy
        import traceback
        calls.append(argv[0])
        saved, sys.argv, rc = sys.argv, list(argv), 0
        with open(out, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                runpy.run_path(os.path.join(ROOT, argv[0]), run_name="__main__")
            except SystemExit as e:                     # sys.exit("msg"): msg printed, exit 1
                print(e.code) if isinstance(e.code, str) else None
                rc = e.code if isinstance(e.code, int) else int(e.code is not None)
            except Exception:
                traceback.print_exc()
                rc = 1
            finally:
                sys.argv = saved
        return rc
    return call


@pytest.fixture(scope="module")
def toy(tmp_path_factory, one_thread):
    import curves
    tmp, calls = tmp_path_factory.mktemp("reproduce"), []
    argv = ["--quick", "--scale=0.001", "--jobs=1", f"--work={tmp / 'work'}", f"--page={tmp / 'docs' / 'RESULTS.md'}"]
    with toy_grids() as mp:
        mp.setattr(reproduce, "FORKS", [in_process(calls)])
        mp.setattr(curves, "draw", lambda *a, **k: None)      # train.py's curves.png: matplotlib per eval
        reproduce.main(argv)
    return tmp, argv, calls


@contextlib.contextmanager
def toy_grids():
    tokenizer = reproduce.tokenizer
    with pytest.MonkeyPatch.context() as mp:
        for name, grid in TOY_GRIDS.items():
            mp.setattr(reproduce, name, grid)
        # "full" = cl100k_base: its 100k-row embedding makes one toy step take seconds (and its
        # checkpoint 300 MB); another tokenizer keeps the code path (its own shards and runs)
        mp.setattr(reproduce, "tokenizer", lambda vocab, *a: tokenizer("1k" if vocab == "full" else vocab, *a))
        yield mp


@pytest.mark.slow
def test_toy_run_writes_every_study_with_claim_table_plot_and_verdict(toy):
    tmp, _, calls = toy
    head, *studies = re.split(r"\n(?=## )", (tmp / "docs" / "RESULTS.md").read_text())
    assert "`python reproduce.py --quick --scale=0.001" in head and re.search(r"git commit [0-9a-f]{7}", head)
    assert "fixed held-out text" in head and len(studies) == 6 and not (tmp / "docs" / "RESULTS.partial.md").exists()
    for study, (title, n_rows) in zip(studies, TOY_ROWS.items()):
        assert study.startswith("## " + title) and "**Paper**" in study and "PAPER.md" in study, study[:80]
        table = [line for line in study.splitlines() if line.startswith("|")]
        assert len(table) >= 2 + n_rows and len({line.count("|") for line in table}) == 1, title
        assert verdict_follows(study.split("**Verdict")[1]), title
        for png in re.findall(r"!\[[^]]*\]\(([^)]+)\)", study):
            assert (tmp / "docs" / png).stat().st_size > 1000, png
    assert says_no_more_than_its_numbers((tmp / "docs" / "RESULTS.md").read_text()) == []
    together = studies[5]                               # study 6: the baselines beside chance, the margin
    assert "no benchmark files" in together or ("| chance | label prior | shortest answer |" in together and
                                                 " margin, nats " in together and "within 2 SE of chance" in together)
    # every run scored once on the held-out text; the step-0 students too
    runs = os.listdir(tmp / "work" / "runs")
    assert calls.count("train.py") == len(runs) and calls.count("eval.py") >= len(runs) + 3


def says_no_more_than_its_numbers(page):
    """What a page's sentences claim against its own tables: each verdict's word from its Δ and SE; study 6's
    counts of scores above / below / within chance from the ▲ ▼ marks of its rows; study 3's "best first"
    orders from its held-out bpb column. Returns the sentences that claim more (none: [])."""
    wrong = [v for v in re.findall(r"\*\*Verdict\*\*.*", page) if not verdict_follows(v)]
    sections = dict(re.findall(r"^## \d\. (.*?)\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    together = sections.get("All together: baseline vs Pro", "")
    if counts := re.search(r"(\d+) of (\d+) scores lie more than 2 SE above chance \(▲\)(?:; (\d+) more than 2 SE "
                           r"below \(▼\))?.*?the other (\d+) are within", together):
        cells = [c for line in together.splitlines() if line.startswith("| ") and " acc" in line
                 for c in line.split("|")[-3:-1]]                               # baseline, Pro: the last two
        above, below = sum("▲" in c for c in cells), sum("▼" in c for c in cells)
        said = [int(n or 0) for n in counts.groups()]
        wrong += [counts[0]] * (said != [above, len(cells), below, len(cells) - above - below])
    inheritance = sections.get("Parameter inheritance", "")
    bpb = {line.split("|")[1].strip(): float(line.split("|")[3].split()[0]) for line in inheritance.splitlines()
           if line.startswith("| ") and re.match(r"[\d.]+", line.split("|")[3].strip())}
    for order, label in ((r"Layers, best first: ([^;]*);", "{}, taylor"), (r"widths: (.*?) \(paper", "edges, {}")):
        if m := re.search(order, inheritance):
            values = [bpb[label.format(name)] for name in m[1].split(" < ")]
            wrong += [m[0]] * (values != sorted(values))
    return wrong


def test_the_committed_page_says_no_more_than_its_numbers():
    page = open(os.path.join(ROOT, "docs", "RESULTS.md"), encoding="utf-8").read()
    if "paired differences" not in page:
        pytest.skip("docs/RESULTS.md predates the verdict rule of reproduce.py (the README says so): regenerate it")
    assert len(re.findall(r"\*\*Verdict\*\*", page)) == 6 and says_no_more_than_its_numbers(page) == []


def test_page_checks_catch_a_sentence_that_says_more():
    verdict = "**Verdict** (a vs b). **Reproduces** (Δ = -0.010 bpb, SE 0.020, 3 seed(s)): yes."    # |Δ| < 2 SE
    together = ("## 6. All together: baseline vs Pro\n\n1 of 2 scores lie more than 2 SE above chance (▲); the "
                "other 1 are within 2 SE of chance: noise here.\n\n| boolq acc (n=9) | 0.5 | – | – | 0.4 ± 0.1 | "
                "0.5 ± 0.1 |\n")                                     # no ▲ in the table: "1 above" says more
    inheritance = ("## 3. Parameter inheritance\n\n| edges, taylor | 2.0 | 2.100 (n=3) | – |\n| edges, l1 | 2.0 | "
                   "2.050 | – |\n\nLayers, best first: edges; widths: taylor < l1 (paper: ...)\n")
    assert says_no_more_than_its_numbers(verdict) == [verdict]
    assert len(says_no_more_than_its_numbers(together)) == 1
    assert says_no_more_than_its_numbers(inheritance) == ["widths: taylor < l1 (paper"]
    assert says_no_more_than_its_numbers(inheritance.replace("taylor < l1", "l1 < taylor")) == []


def test_study_4_domains_without_shared_data_are_shakespeares_works_by_kind(tmp_path, monkeypatch):
    """Without ../shared: histories, poems, the other plays; each ONE document of train.txt (so contiguous
    batches hold one kind), its held-out end in NAME.txt, never inside the train text."""
    import data.corpus
    works = {"henry_v": "Once more unto the breach.\n" * 400, "sonnets": "Shall I compare thee.\n" * 400,
             "hamlet": "To be, or not to be.\n" * 200 + "The rest is silence.\n" * 200}
    monkeypatch.setattr(data.corpus, "fetch_shakespeare", lambda: works)
    monkeypatch.setattr(reproduce, "children", lambda: False)
    monkeypatch.setattr(reproduce, "OPTS", argparse.Namespace(work=str(tmp_path), scale=0.005))   # 4.5/2.5/1.25 KB
    folder, names = reproduce.domains()
    assert names == ["histories", "poems", "plays"]
    train_text = open(f"{folder}/train.txt").read()
    docs = [d for d in train_text.split("\n<|endoftext|>\n") if d]
    assert len(docs) == 3 and docs[0].startswith("Once more") and docs[1].startswith("Shall I")
    held = {n: open(f"{folder}/{n}.txt").read() for n in names}
    assert held["plays"].startswith("The rest is silence.") and "The rest is silence" not in docs[2]
    assert all(0 < len(h.encode()) <= 85_334 * 0.01 for h in held.values())     # HELDOUT_BYTES / 3 x 2 x scale
    assert open(f"{folder}/val.txt").read().count("<|endoftext|>") == 3 and reproduce.domains() == (folder, names)


@pytest.mark.slow
def test_rerun_trains_nothing_and_resumes_an_interrupted_run(toy):
    tmp, argv, _ = toy
    runs = tmp / "work" / "runs"
    results = {d: (runs / d / "result.json").stat().st_mtime_ns for d in os.listdir(runs)}
    victim = runs / "batch2-r0.5-s1337"                 # "interrupted": its checkpoint is there, no result
    n_log = len(open(victim / "log.jsonl").readlines())
    (victim / "result.json").unlink()
    (victim / "heldout.json").unlink()
    launched = []
    with toy_grids() as mp:
        mp.setattr(reproduce, "FORKS", [in_process(launched)])
        reproduce.main(argv)
    after = {d: (runs / d / "result.json").stat().st_mtime_ns for d in os.listdir(runs)}
    assert after.keys() == results.keys() and [d for d in after if after[d] != results[d]] == [victim.name]
    assert launched == ["train.py", "eval.py"]            # the victim resumed and was scored: nothing else
    assert len(open(victim / "log.jsonl").readlines()) == n_log          # resumed at its end: no step re-trained


def test_sh_runs_a_real_process_logs_it_and_fails_in_one_line(tmp_path, monkeypatch):
    """The path the toy run replaces: a real `python SCRIPT` in the project folder (forked by the script
    server), its output appended to the log; a failure stops with one line naming its last two lines and the log."""
    monkeypatch.setattr(reproduce, "OPTS", argparse.Namespace(work=str(tmp_path), jobs=1))
    monkeypatch.setattr(reproduce, "FORKS", [Forks(reproduce.HERE, preload=())])    # no torch import: the mechanism
    script, log = tmp_path / "s.py", tmp_path / "logs" / "s.log"
    script.write_text("import os, sys\nprint(os.getcwd())\nprint('second')\nsys.exit(int(sys.argv[1]))\n")
    try:
        assert reproduce.sh([str(script), "0"], str(log)) == ""
        assert reproduce.sh([str(script), "3"], str(log), check=False) == f"{reproduce.HERE} | second"
        with pytest.raises(SystemExit) as e:
            reproduce.sh([str(script), "4"], str(log))
    finally:
        reproduce.FORKS[0].close()
    assert str(e.value) == (f"reproduce.py: error: {script} failed (exit 4): {reproduce.HERE} | second (log: {log}); "
                            "re-run to resume")
    assert log.read_text().count("second") == 3                               # appended, run after run
