# Tests of eval.py: harness-style tokenisation and prompt formats, the batched scorer against a brute-force
# reference, bits per byte (exact for uniform logits), chance level of a random model, the command line.
import gzip
import json
import math
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

import eval as ev
from model import Transformer, model_config
from tokenizer_compress import load_tokenizer, tokenizer_identity, decode_sample

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data", "eval")   # absent for most users: tests skip


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models gain nothing from a second thread, and on a shared machine two OpenMP threads that
    # wait for each other make small ops 10-20x slower: run this file on one.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def enc():
    return load_tokenizer("cl100k_base")


def tiny(vocab_size=100288, block_size=64, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=vocab_size, n_layer=2, n_embd=32, n_head=2, block_size=block_size)
    return Transformer(model_config("tiny", **{**cfg, **kw})).eval()


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def ckpt(enc, model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ckpt") / "ckpt.pt")
    torch.save({"model": model.state_dict(), "model_config": asdict(model.config), "tokenizer": tokenizer_identity(enc),
                "train_config": {}, "step": 7}, path)
    return path


# ------------------------------------------------------------------------------------------------
# Tokenisation of (context, continuation), as lm-evaluation-harness does it.
# ------------------------------------------------------------------------------------------------
def test_context_ending_in_whitespace(enc):
    # "Answer: " + "yes": the space moves onto the continuation, which is then the single token " yes",
    # not " " (end of context) + "yes" as encoding the two strings separately would give.
    c, k = ev.encode_pair(enc, "Question: is it?\nAnswer: ", "yes")
    assert c == enc.encode_ordinary("Question: is it?\nAnswer:")
    assert k == enc.encode_ordinary(" yes") and len(k) == 1
    assert enc.encode_ordinary("Question: is it?\nAnswer: ")[-1] == enc.encode_ordinary(" ")[0]   # what we avoid
    # Newlines move too, but cl100k makes ".\n\n" ONE token: encode("Passage.\n\nThen") = [Passage, ".\n\n",
    # Then], so the tail after len(encode("Passage.")) = 2 tokens is just "Then". The harness's rule, kept.
    c, k = ev.encode_pair(enc, "Passage.\n\n", "Then")
    assert enc.decode(c) == "Passage." and enc.decode(k) == "Then"


def test_continuation_is_tail_of_joint_encoding(enc):
    # Where splitting matters: "Hello wor" + "ld peace". encode(context + continuation) is
    # [Hello, " world", " peace"]; the continuation is everything after len(encode(context)) = 2 tokens,
    # i.e. [" peace"] — not encode("ld peace") = ["ld", " peace"].
    c, k = ev.encode_pair(enc, "Hello wor", "ld peace")
    whole = enc.encode_ordinary("Hello world peace")
    assert c == enc.encode_ordinary("Hello wor") and k == whole[len(c):]
    assert enc.decode(k) == " peace" and k != enc.encode_ordinary("ld peace")


def test_empty_context_is_end_of_text(enc):
    assert ev.encode_pair(enc, "", " hi") == ([enc.eot_token], enc.encode_ordinary(" hi"))
    assert ev.encode_pair(enc, "  ", "hi") == ([enc.eot_token], enc.encode_ordinary("  hi"))


# ------------------------------------------------------------------------------------------------
# Prompt formats: every task, every record layout eval.py accepts.
# ------------------------------------------------------------------------------------------------
LONG = " ".join(["The river runs past the old mill and under the stone bridge."] * 12)   # > 64 tokens: truncation
RECORDS = {
    "hellaswag": [
        ({"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
          "label": 3, "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                                  "is holding a rubik's cube.", "starts pulling up roofing on a roof."]},
         "Roof shingle removal: A man is sitting on a roof. He", " is using wrap to wrap a pair of skis.", 3),
        ({"activity_label": "Personal Care and Style", "ctx_a": "[header] How to dye your hair [title] Choose a color.",
          "ctx_b": "", "label": 0, "endings": ["[step] Pick a shade.", "Go  bald.", "Eat it.", "Sing."]},
         "Personal Care and Style: How to dye your hair. Choose a color.", "  Pick a shade.", 0),
        ({"query": "Cooking: A woman stirs a pot. She", "choices": ["adds salt.", "flies.", "reads.", "sleeps."], "gold": 1},
         "Cooking: A woman stirs a pot. She", " adds salt.", 1),
    ],
    "piqa": [({"goal": "How do I open a jar?", "sol1": "Twist the lid.", "sol2": "Hit it hard.", "label": 1},
              "Question: How do I open a jar?\nAnswer:", " Twist the lid.", 1)],
    "arc_easy": [
        ({"id": "a", "query": "Question: What is ice?\nAnswer:", "choices": ["water", "fire", "wood"], "gold": 0},
         "Question: What is ice?\nAnswer:", " water", 0),
        ({"id": "b", "question": "Which is a gas?", "choices": {"text": ["rock", "steam", "oil", "salt"], "label": ["1", "2", "3", "4"]},
          "answerKey": "2"}, "Question: Which is a gas?\nAnswer:", " rock", 1),
        ({"id": "c", "question": {"stem": "What melts?", "choices": [{"text": "ice", "label": "A"}, {"text": "air", "label": "B"}]},
          "answerKey": "B"}, "Question: What melts?\nAnswer:", " ice", 1),
    ],
    "winogrande": [
        ({"sentence": "The cup did not fit in the box because the _ was too big.", "option1": "cup", "option2": "box",
          "answer": "1"}, "The cup did not fit in the box because the cup", " was too big.", 0),
        ({"qID": "3QHITW7OYO7Q6B6ISU2UMJB84ZLAQE-2", "sentence": "Sarah gave Maria a gift since _ was kind.",
          "option1": "Sarah", "option2": "Maria", "answer": "2"}, "Sarah gave Maria a gift since Sarah", " was kind.", 1),
    ],
    "boolq": [
        ({"question": "is the river long", "answer": True, "passage": LONG},
         LONG + "\nQuestion: is the river long?\nAnswer:", " no", 1),
        ({"question": "is it red", "title": "Red", "answer": False, "passage": "It is blue."},
         "It is blue.\nQuestion: is it red?\nAnswer:", " no", 0),
        ({"question": "does it run", "label": 1, "idx": 0, "passage": "It runs."},
         "It runs.\nQuestion: does it run?\nAnswer:", " no", 1),
    ],
    "openbookqa": [
        ({"query": "Sunlight helps plants", "choices": ["grow", "sing", "fly", "sleep"], "gold": 0},
         "Sunlight helps plants", " grow", 0),
        ({"id": "7-980", "question_stem": "The sun is", "choices": {"text": ["hot", "cold", "wet", "blue"],
          "label": ["A", "B", "C", "D"]}, "answerKey": "A"}, "The sun is", " hot", 0),
        ({"id": "8-1", "question": {"stem": "Fish live in", "choices": [{"text": "trees", "label": "A"}, {"text": "water", "label": "B"}]},
          "answerKey": "B"}, "Fish live in", " trees", 1),
    ],
    "sciq": [
        ({"question": "What do plants make?", "distractor1": "rocks", "distractor2": "iron", "distractor3": "salt",
          "correct_answer": "sugar", "support": "  Plants make sugar from light."},
         "Plants make sugar from light.\nQuestion: What do plants make?\nAnswer:", " rocks", 3),
        ({"question": "What is H2O?", "distractor1": "air", "distractor2": "gold", "distractor3": "oil",
          "correct_answer": "water", "support": ""}, "\nQuestion: What is H2O?\nAnswer:", " air", 3),
    ],
    "lambada": [
        ({"context": "She opened the door and saw her", "continuation": "dog"}, "She opened the door and saw her", " dog", 0),
        ({"text": "He drank a glass of cold water"}, "He drank a glass of cold", " water", 0),
    ],
}
RECORDS["arc_challenge"] = RECORDS["arc_easy"]


@pytest.mark.parametrize("task", sorted(RECORDS))
def test_prompt_formats(task, tmp_path):
    path = tmp_path / f"{task}.jsonl.gz"                  # gzip, detected by its magic bytes
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r, *_ in RECORDS[task])
    items = ev.load_task(task, str(path))
    for item, (_, context, first_continuation, gold) in zip(items, RECORDS[task]):
        assert item["requests"][0] == (context, first_continuation) and item["gold"] == gold
    if task == "winogrande":                               # both options share the scored continuation
        assert all(len({c for _, c in it["requests"]}) == 1 for it in items)


def test_piqa_labels_file_and_json_array(tmp_path):
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps({"goal": g, "sol1": "a", "sol2": "b"}) + "\n" for g in "xy"))
    (tmp_path / "valid-labels.lst").write_text("1\n0\n")
    assert [it["gold"] for it in ev.load_task("piqa", str(tmp_path / "valid.jsonl"))] == [1, 0]
    (tmp_path / "test.json").write_text(json.dumps([RECORDS["sciq"][0][0]]))   # SciQ's release: one JSON array
    assert ev.load_task("sciq", str(tmp_path / "test.json"))[0]["gold"] == 3
    (tmp_path / "bad.jsonl").write_text('{"goal": "x", "label": 0}\n')
    with pytest.raises(ValueError, match="record 1 is not a piqa record"):
        ev.load_task("piqa", str(tmp_path / "bad.jsonl"))


# ------------------------------------------------------------------------------------------------
# The batched scorer equals a brute-force reference: one plain forward pass per choice.
# ------------------------------------------------------------------------------------------------
def brute_force(model, enc, context, continuation):
    """Sum of log p(continuation tokens | context), the slow obvious way: full logits of one sequence,
    log_softmax over the tokenizer's ids, the harness's left truncation to block_size + 1 tokens."""
    c, k = ev.encode_pair(enc, context, continuation)
    ids = (c + k)[-(model.config.block_size + 1):]
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]]))[0][0, -len(k):, :enc.n_vocab]   # rows predicting the continuation
    logp = torch.log_softmax(logits, dim=-1)
    return sum(logp[i, t].item() for i, t in enumerate(k)), all(logits[i].argmax().item() == t for i, t in enumerate(k))


def all_items(tmp_path):
    """Every synthetic record of every task, plus the first 3 items of each task file present."""
    items = []
    for task, recs in RECORDS.items():
        path = tmp_path / f"{task}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r, *_ in recs))
        items += ev.load_task(task, str(path))
        if os.path.isdir(SHARED):
            try:
                items += ev.load_task(task, ev.find_task_file(task, SHARED), limit=3)
            except FileNotFoundError:
                pass
    return items


def test_scorer_equals_brute_force(enc, model, tmp_path):
    requests = [r for it in all_items(tmp_path) for r in it["requests"]]
    assert any(len(sum(ev.encode_pair(enc, *r), [])) > model.config.block_size + 1 for r in requests)  # truncation hit
    reference = [brute_force(model, enc, *r) for r in requests]
    for batch_size in (1, 7):                              # 7: batches mix choices of several items, padded
        scores = ev.score_requests(model, enc, requests, batch_size=batch_size, progress=False)
        for (ll, greedy), (ll_ref, greedy_ref) in zip(scores, reference):
            assert ll == pytest.approx(ll_ref, rel=1e-5, abs=1e-4) and greedy == greedy_ref


def test_task_metrics_follow_scores(enc, model, tmp_path):
    path = tmp_path / "arc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r, *_ in RECORDS["arc_easy"]))
    res = ev.evaluate_task(model, enc, "arc_easy", str(path), progress=False)
    hits, hits_norm = [], []
    for it in ev.load_task("arc_easy", str(path)):
        ll = np.array([brute_force(model, enc, *r)[0] for r in it["requests"]])
        hits.append(np.argmax(ll) == it["gold"])
        hits_norm.append(np.argmax(ll / np.array(it["lens"])) == it["gold"])
    assert res["acc"] == np.mean(hits) and res["acc_norm"] == np.mean(hits_norm)
    assert res["chance"] == pytest.approx(np.mean([1 / 3, 1 / 4, 1 / 2]))


def test_continuation_longer_than_context_is_scored_in_pieces(enc):
    # 150 continuation tokens, context 64: three pieces. With uniform logits every token costs exactly
    # ln(n_vocab), so the sum shows each token is scored once; a short one in the same batch is unaffected.
    model = tiny()
    torch.nn.init.zeros_(model.lm_head.weight)
    (ll, _), (ll_short, _) = ev.score_requests(model, enc, [("Hi", " word" * 150), ("Hi", " word")], progress=False)
    assert ll == pytest.approx(-150 * math.log(enc.n_vocab), rel=1e-6)
    assert ll_short == pytest.approx(-math.log(enc.n_vocab), rel=1e-6)


# ------------------------------------------------------------------------------------------------
# Bits per byte.
# ------------------------------------------------------------------------------------------------
DOCS = ["The cat sat on the mat.\nIt was a sunny day, and the cat was happy.", "Naïve café — 東京 and Zürich.",
        "A third document, a little longer than the others: " + "tick tock " * 30]


def write_docs(path):
    path.write_text("".join(d + "\n<|endoftext|>\n" for d in DOCS), encoding="utf-8")   # ../shared/data's layout
    return str(path)


def test_bpb_uniform_logits_is_log2_vocab_exactly(enc, tmp_path):
    model = tiny(block_size=16)
    torch.nn.init.zeros_(model.lm_head.weight)            # every logit 0: p = 1/n_vocab for every real token
    ids, n_bytes = ev.load_bpb_data(write_docs(tmp_path / "val.txt"), enc, tokenizer_identity(enc))
    assert n_bytes == sum(len(d.encode("utf-8")) for d in DOCS) == ev.text_bytes(enc, ids)
    assert list(ids).count(enc.eot_token) == len(DOCS) and len(ids) > 3 * 16   # several windows
    for stride in (0, 1, 5, 16):
        r = ev.bits_per_byte(model, enc, ids, n_bytes, stride=stride, progress=False)
        assert r["tokens"] == len(ids)
        assert r["bpb"] == pytest.approx(math.log2(enc.n_vocab) * len(ids) / n_bytes, rel=1e-6)
        assert r["ppl_per_token"] == pytest.approx(enc.n_vocab, rel=1e-5)
    # the 11 padding rows are masked out: with them it would be log2(100288) per token, 9.5e-6 (relative) more
    assert abs(r["bpb"] / (math.log2(model.config.vocab_size) * len(ids) / n_bytes) - 1) > 5e-6


def test_bpb_windows_score_every_token_once(enc):
    # stride 1 = each token predicted with the fullest context the window allows: compare with one
    # forward per token over exactly that context.
    model = tiny(block_size=8, seed=1)
    ids = np.array(enc.encode_ordinary(DOCS[0]) + [enc.eot_token])
    x = [enc.eot_token] + ids.tolist()
    nll = 0.0
    with torch.no_grad():
        for t in range(1, len(x)):
            ctx = x[max(0, t - 8):t]
            nll -= torch.log_softmax(model(torch.tensor([ctx]))[0][0, -1, :enc.n_vocab], -1)[x[t]].item()
    r = ev.bits_per_byte(model, enc, ids, stride=1, batch_size=3, progress=False)
    assert r["bytes"] == len(DOCS[0].encode()) and r["nats_per_token"] == pytest.approx(nll / len(ids), rel=1e-5)


def test_bpb_shard_folder_matches_text_and_checks_tokenizer(enc, tmp_path):
    from data.prepare import prepare
    text = write_docs(tmp_path / "docs.txt")
    prepare(input=text, val_input=text, out_dir=str(tmp_path / "shards"))
    ident = tokenizer_identity(enc)
    ids_text, bytes_text = ev.load_bpb_data(text, enc, ident)
    ids_shard, bytes_shard = ev.load_bpb_data(str(tmp_path / "shards"), enc, ident)
    assert np.array_equal(ids_text, ids_shard) and bytes_text == bytes_shard
    with pytest.raises(ValueError, match="tokenized with"):
        ev.load_bpb_data(str(tmp_path / "shards"), enc, {**ident, "sha256": "0" * 64, "name": "other"})


# ------------------------------------------------------------------------------------------------
# A randomly initialised model scores at chance level on every task file present: the first 200 items
# of each, within 4 binomial standard errors. Which metric: a random model gives every token about the
# same log-probability, so its UNnormalised score mostly counts tokens and `acc` picks the choice with
# the fewest — a length bias of the dataset, not chance (OpenBookQA's gold answers are longer: acc ~0.13
# there). acc_norm divides the length out, so it is the one tested where the harness reports it (with
# this tokenizer: surface statistics still leak in with others; a byte-level one gets OpenBookQA
# acc_norm ~0.47). BoolQ ("no"/"yes", 62% yes): a random model says the same word almost every time,
# so it lands between the two constant answers' accuracies (38%..62%). LAMBADA: chance is 0.
# ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.isdir(SHARED), reason=f"no benchmark files at {SHARED}")
def test_random_model_scores_at_chance(enc):
    model = tiny(n_layer=1, n_embd=16, block_size=256)
    n_tested = 0
    for task in ev.TASKS:
        try:
            path = ev.find_task_file(task, SHARED)
        except FileNotFoundError:
            continue
        r = ev.evaluate_task(model, enc, task, path, limit=200, batch_size=32, progress=False)
        n, acc = r["n"], r.get("acc_norm", r["acc"])
        if task == "lambada":
            assert acc <= 0.01, r
        elif task == "boolq":
            p_yes = np.mean([it["gold"] for it in ev.load_task(task, path, limit=200)])
            tol = 4 * math.sqrt(0.25 / n)
            assert min(p_yes, 1 - p_yes) - tol <= acc <= max(p_yes, 1 - p_yes) + tol, r
        else:
            assert abs(acc - r["chance"]) <= 4 * math.sqrt(r["chance"] * (1 - r["chance"]) / n), (task, r)
        n_tested += 1
    assert n_tested > 0


# ------------------------------------------------------------------------------------------------
# Command line, errors, samples.
# ------------------------------------------------------------------------------------------------
def test_cli_end_to_end(ckpt, tmp_path, capsys):
    piqa = tmp_path / "p.jsonl"
    piqa.write_text("".join(json.dumps(r) + "\n" for r, *_ in RECORDS["piqa"] * 3))
    lam = tmp_path / "l.jsonl"
    lam.write_text("".join(json.dumps(r) + "\n" for r, *_ in RECORDS["lambada"]))
    out = tmp_path / "r.json"
    ev.main(["--ckpt", ckpt, "--bpb", write_docs(tmp_path / "v.txt"), "--limit", "40", "--tasks", f"piqa={piqa},lambada={lam}",
             "--sample", "Hello", "--max-new-tokens", "5", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["step"] == 7 and report["bpb"]["tokens"] == 40 and report["bpb"]["bpb"] > 0
    assert report["tasks"]["piqa"]["n"] == 3 and "acc_norm" in report["tasks"]["piqa"]
    assert "ppl" in report["tasks"]["lambada"] and report["sample"]["text"]
    printed = capsys.readouterr().out
    assert "acc_norm" in printed and "bits per byte" in printed


def test_task_files_in_data_dir(tmp_path):
    (tmp_path / "piqa_valid.jsonl").write_text("")
    with gzip.open(tmp_path / "lambada_test.jsonl.gz", "wt") as f:            # OpenAI's name, gzipped
        f.write(json.dumps(RECORDS["lambada"][1][0]) + "\n")
    found = ev.resolve_tasks("all", str(tmp_path))
    assert found == {"piqa": str(tmp_path / "piqa_valid.jsonl"), "lambada": str(tmp_path / "lambada_test.jsonl.gz")}
    assert ev.load_task("lambada", found["lambada"])[0]["requests"] == [("He drank a glass of cold", " water")]
    with pytest.raises(FileNotFoundError, match="no benchmark files"):
        ev.resolve_tasks("all", str(tmp_path / "empty"))


def test_cli_errors(ckpt, tmp_path):
    with pytest.raises(SystemExit, match=r"eval.py: error: hellaswag: expected .*hellaswag_val.jsonl"):
        ev.main(["--ckpt", ckpt, "--tasks", "hellaswag", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown task 'mmlu'"):
        ev.main(["--ckpt", ckpt, "--tasks", "mmlu"])
    with pytest.raises(SystemExit, match="checkpoint .* not found"):
        ev.main(["--ckpt", str(tmp_path / "none.pt"), "--sample", ""])
    with pytest.raises(SystemExit, match="does not exist"):
        ev.main(["--ckpt", ckpt, "--bpb", str(tmp_path / "missing.txt")])


def test_help_and_import_have_no_side_effects(capsys):
    with pytest.raises(SystemExit) as e:
        ev.main(["--help"])
    assert e.value.code == 0 and "(default: 16)" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-c", "import eval"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_sample_is_seeded_and_decodes_any_id(enc, model):
    a = ev.sample(model, enc, "Once upon a time", max_new_tokens=8, temperature=1.0, top_k=50, seed=3)
    assert a == ev.sample(model, enc, "Once upon a time", max_new_tokens=8, temperature=1.0, top_k=50, seed=3)
    greedy = ev.sample(model, enc, "Once", max_new_tokens=4, temperature=0)
    ids = enc.encode_ordinary("Once")
    for _ in range(4):                                     # greedy = argmax of the plain forward, step by step
        ids.append(model(torch.tensor([ids]))[0][0, -1].argmax().item())
    assert greedy == decode_sample(enc, ids[1:])
    assert decode_sample(enc, enc.encode_ordinary("Hi") + [100256, 100287]) == "Hi"   # a gap and a padding row
