# Tests of eval.py's reference points beside a multiple-choice score (the results page's "Baseline vs Pro"): the
# label prior, the shortest answer, the margin with its standard error and the below-chance flag, each pinned to
# values worked out by hand on a few fixed items; and once end to end, through the results file of a real run.
# Last, the split of eval.py: data/benchmarks.py reads the files and knows nothing of models.
import ast
import csv
import json
import math
import os
import sys

import numpy as np
import pytest
import torch

import eval as ev
from data.benchmarks import mc

pytestmark = pytest.mark.usefixtures("one_thread")

# Five items: (query, choices, gold, a log-likelihood per choice for the stub scorer).
ITEMS = [("q0", ["aaa", "bbbbb"], 1, [-1.0, -3.0]),               # argmax 0: a miss; margin -3 - -1 = -2
         ("q1", ["cc", "dd"], 0, [-2.0, -2.5]),                   # a hit; margin 0.5
         ("q2", ["eeeeeee", "ffff"], 1, [-4.0, -1.0]),            # a hit; margin 3
         ("q3", ["g", "hhhhhhhhh"], 1, [-0.5, -6.0]),             # a miss; margin -5.5
         ("q4", ["i", "jjjjj", "kkkkk"], 2, [-1.0, -2.0, -1.5])]  # a miss; margin -1.5 - -1 = -0.5
LL = {(q, " " + c): ll for q, choices, _, lls in ITEMS for c, ll in zip(choices, lls)}


def write_items(path, items=ITEMS):
    path.write_text("".join(json.dumps({"query": q, "choices": c, "gold": g}) + "\n" for q, c, g, _ in items))
    return str(path)


@pytest.fixture
def stub_scorer(monkeypatch):
    """score_requests replaced by the table LL: (context, continuation) -> (log-likelihood, greedy)."""
    monkeypatch.setattr(ev, "score_requests", lambda model, enc, requests, *a, **k: [(LL[r], False) for r in requests])


def test_label_prior_and_shortest_by_hand():
    # golds 1, 0, 1, 1, 2: index 1 is the most frequent, 3 of 5 -> label_prior 0.6.
    # shortest (characters; ties: the first): [3, 5] -> 0 (gold 1, miss), [2, 2] -> 0 (gold 0, hit: the tie
    # goes to the first), [7, 4] -> 1 (hit), [1, 9] -> 0 (miss), [1, 5, 5] -> 0 (gold 2, miss) -> 2/5.
    items = [mc(q, c, g) for q, c, g, _ in ITEMS]
    items[4] = mc("q4", ["l", "mmmmm", "nnnnn"], 2)
    assert ev.baselines(items) == {"label_prior": 0.6, "shortest": 0.4}
    items[4] = mc("q4", ["lllll", "mmmmm", "n"], 2)                  # now the shortest is the gold
    assert ev.baselines(items)["shortest"] == 0.6


def test_boolq_label_prior_is_the_more_frequent_answer(tmp_path):
    # 3 "yes" (True), 2 "no": always answering "yes" scores 3/5; with 4 "no" of 5, always "no" scores 4/5
    path = tmp_path / "boolq.jsonl"
    for answers, prior in (([True, True, False, True, False], 0.6), ([False, True, False, False, False], 0.8)):
        path.write_text("".join(json.dumps({"question": "q", "passage": "p", "answer": a}) + "\n" for a in answers))
        assert ev.baselines(ev.load_task("boolq", str(path)))["label_prior"] == prior


def test_result_keys_by_hand(tmp_path, stub_scorer):
    res = ev.evaluate_task(None, None, "mine", write_items(tmp_path / "mine.jsonl"), progress=False)
    assert res["acc"] == 0.4                                            # q1, q2
    assert res["acc_stderr"] == pytest.approx(math.sqrt(1.2 / 4 / 5))  # hits 0,1,1,0,0: squares sum 1.2, n - 1 = 4
    assert res["acc_norm"] == 0.6               # per character: q0 -1/3 > -3/5 (miss); q4 -1.5/5 > -2/5 > -1 (hit)
    assert res["chance"] == pytest.approx((4 * 0.5 + 1 / 3) / 5)
    assert res["label_prior"] == 0.6 and res["shortest"] == 0.4        # shortest: q1 (a tie: the first), q2
    assert res["margin"] == pytest.approx(-0.9)                         # (-2 + 0.5 + 3 - 5.5 - 0.5) / 5
    # deviations from -0.9: -1.1, 1.4, 3.9, -4.6, 0.4; squares sum 39.7; sample std / sqrt(n)
    assert res["margin_stderr"] == pytest.approx(math.sqrt(39.7 / 4 / 5))
    assert res["below_chance"] is False                                 # 0.467 - 0.4 < 2 x 0.245


def test_limit_scores_baselines_on_the_same_items(tmp_path, stub_scorer):
    res = ev.evaluate_task(None, None, "mine", write_items(tmp_path / "mine.jsonl"), limit=3, progress=False)
    # q0..q2: golds 1, 0, 1 -> 2/3; shortest picks 0, 0, 1 -> q1, q2: 2/3; margins -2, 0.5, 3 -> 0.5
    assert (res["n"], res["label_prior"], res["shortest"]) == (3, pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert res["acc"] == pytest.approx(2 / 3) and res["margin"] == pytest.approx(0.5)


def test_below_chance_needs_more_than_two_standard_errors(tmp_path, monkeypatch):
    # 20 two-choice items, the model right on k of them: acc k/20, SE sqrt(acc (1 - acc) / 19), chance 0.5.
    #   k = 2: 0.5 - 0.1 = 0.4 > 2 x 0.0688 -> below;  k = 7: 0.5 - 0.35 = 0.15 > 2 x 0.1094 = 0.219? no.
    items = [(f"q{i}", ["a", "b"], 0, None) for i in range(20)]
    path = write_items(tmp_path / "twenty.jsonl", items)
    for k, below in ((2, True), (7, False), (10, False)):
        right = {f"q{i}" for i in range(k)}
        monkeypatch.setattr(ev, "score_requests", lambda m, e, reqs, *a, **kw: [
            (-1.0 if (c == " a") == (q in right) else -2.0, False) for q, c in reqs])
        res = ev.evaluate_task(None, None, "mine", path, progress=False)
        se = math.sqrt(k / 20 * (1 - k / 20) / 19)
        assert res["acc"] == k / 20 and res["acc_stderr"] == pytest.approx(se)
        assert res["below_chance"] is below and (0.5 - k / 20 > 2 * se) is below
        assert res["margin"] == pytest.approx((k - (20 - k)) / 20)      # +1 nat where right, -1 where wrong


def test_lambada_has_no_multiple_choice_baselines(tmp_path, monkeypatch):
    path = tmp_path / "lambada.jsonl"
    path.write_text(json.dumps({"text": "He drank a glass of cold water"}) + "\n")
    monkeypatch.setattr(ev, "score_requests", lambda m, e, reqs, *a, **kw: [(-2.0, True) for _ in reqs])
    res = ev.evaluate_task(None, None, "lambada", str(path), progress=False)
    assert res["acc"] == 1.0 and res["ppl"] == pytest.approx(math.exp(2.0))
    assert not {"label_prior", "shortest", "margin", "below_chance"} & set(res)


def test_exam_shortest_reads_the_options_not_the_letters(tmp_path, monkeypatch):
    # The scored continuations are " A".." D" (all 1 character); the shortest answer is the shortest option.
    folder = tmp_path / "m" / "test"
    folder.mkdir(parents=True)
    with open(folder / "s_test.csv", "w", newline="") as f:
        csv.writer(f).writerows([["q1", "aaaa", "b", "cc", "ddd", "B"],       # shortest B = gold
                                 ["q2", "aaaa", "bbb", "c", "dd", "A"],       # shortest C, gold A
                                 ["q3", "a", "bbb", "cc", "dddd", "B"]])      # shortest A, gold B
    monkeypatch.setattr(ev, "score_requests", lambda m, e, reqs, *a, **kw: [(0.0, False) for _ in reqs])
    res = ev.evaluate_task(None, None, "mmlu", str(tmp_path / "m"), progress=False)
    assert res["shortest"] == pytest.approx(1 / 3) and res["label_prior"] == pytest.approx(2 / 3)   # B twice


def test_end_to_end_results_file(tmp_path, capsys):
    # A real (random, tiny) model through main(): the JSON line has every key, the baselines match the hand
    # values (they need no model), the margin is the mean of gold minus best distractor of the real scores.
    from dataclasses import asdict
    from model import Transformer, model_config
    from tokenizer_compress import load_tokenizer, tokenizer_identity
    enc = load_tokenizer("cl100k_base")
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=100288, n_layer=1, n_embd=16, n_head=1, block_size=32))
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "model_config": asdict(model.config),
                "tokenizer": tokenizer_identity(enc), "step": 1}, ckpt)
    out = tmp_path / "r.jsonl"
    ev.main(["--ckpt", str(ckpt), "--tasks", f"mine={write_items(tmp_path / 'mine.jsonl')}", "--out", str(out)])
    res = json.loads(out.read_text())["tasks"]["mine"]
    assert {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "chance", "label_prior", "shortest", "margin",
            "margin_stderr", "below_chance"} <= set(res)
    assert res["label_prior"] == 0.6 and res["shortest"] == 0.4 and res["n"] == 5
    scores = ev.score_requests(model.eval(), enc, [(q, " " + c) for q, cs, _, _ in ITEMS for c in cs], progress=False)
    lls, margins = iter([ll for ll, _ in scores]), []
    for _, choices, gold, _ in ITEMS:
        ll = [next(lls) for _ in choices]
        margins.append(ll[gold] - max(x for i, x in enumerate(ll) if i != gold))
    assert res["margin"] == pytest.approx(np.mean(margins), abs=1e-9)
    assert res["margin_stderr"] == pytest.approx(np.std(margins, ddof=1) / math.sqrt(5), abs=1e-9)
    assert res["below_chance"] == (res["chance"] - res["acc"] > 2 * res["acc_stderr"])
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("task ", "mine "))]
    assert len(table) == 2 and all(word in table[0] for word in ("chance", "prior", "short", "margin"))
    assert max(len(line) for line in table) < 120


def test_benchmarks_module_reads_files_and_knows_no_models():
    # data/benchmarks.py imports the standard library only (no torch, numpy or project module), so a first read
    # of eval.py can skip it; eval keeps its names reachable (tests, labs and users call ev.load_task, ev.mc ...).
    import data.benchmarks as bench
    tree = ast.parse(open(bench.__file__, encoding="utf-8").read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    assert os.path.basename(os.path.dirname(bench.__file__)) == "data"
    for name in ("TASKS", "load_task", "load_exam", "find_task_file", "detect_layout", "read_records"):
        assert getattr(ev, name) is getattr(bench, name), name
    # it reads a file on its own: a processed record (query, choices, gold) -> the harness's requests
    item = bench.build_items([{"query": "Q", "choices": ["a", "bb"], "gold": 1}], bench.TASKS["arc_easy"][0],
                             "f:", "arc_easy", "gold")[0]
    assert item == {"requests": [("Q", " a"), ("Q", " bb")], "gold": 1, "chars": [1, 2], "lens": [1, 2]}
