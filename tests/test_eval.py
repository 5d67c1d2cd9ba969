# Tests of eval.py: harness-style tokenisation and prompt formats (every layout, under any task name), the
# batched scorer against a brute-force reference, acc_norm's lengths, bits per byte (exact for uniform
# logits), chance level of a random model, a checkpoint written by train.py, the command line.
import gzip
import json
import math
import os
from dataclasses import asdict

import numpy as np
import pytest
import torch

import eval as ev
from model import ModelConfig, Transformer, model_config
from tokenizer_compress import load_tokenizer, tokenizer_identity, decode_sample

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data", "eval")   # absent for most users: tests skip


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py: tiny models run on one thread


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
    # lm_eval/tasks/super_glue/copa/utils.py: premise.strip() minus its last character + " because"/" therefore";
    # choices " " + first letter lowercased, after the target delimiter " ": two spaces.
    "copa": [
        ({"premise": "The kettle whistled.", "choice1": "Water boiled in it.", "choice2": "It was empty.",
          "question": "cause", "idx": 0, "label": 0}, "The kettle whistled because", "  water boiled in it.", 0),
        ({"premise": " It rained all day. ", "choice1": "The river rose.", "choice2": "Ants sang.", "question": "effect",
          "label": 1}, "It rained all day therefore", "  the river rose.", 1),
    ],
    # lm_eval/tasks/siqa/siqa.yaml: "Q: {context} {question}\nA:", " " + answer, label "1".."3" -> 0..2.
    "siqa": [
        ({"context": "Kai lent Sam an umbrella.", "question": "How would Sam feel?", "answerA": "grateful",
          "answerB": "wet", "answerC": "angry", "label": "1"},
         "Q: Kai lent Sam an umbrella. How would Sam feel?\nA:", " grateful", 0),
        ({"context": "Jo lost the race.", "question": "What will Jo want to do next?", "answerA": "sleep",
          "answerB": "give up", "answerC": "train harder", "label": 3},
         "Q: Jo lost the race. What will Jo want to do next?\nA:", " sleep", 2),
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
    if task == "copa":
        assert items[1]["requests"][1] == ("It rained all day therefore", "  ants sang.")
    if task in ("copa", "siqa", "boolq", "winogrande", "lambada"):    # the harness reports acc only
        assert all(it["lens"] is None for it in items)


def test_any_task_name_reads_a_known_layout(tmp_path):
    # NAME=PATH with a name eval.py does not know: the record keys pick the template. Every layout above,
    # one record per file, gives the same items under the name "mine" as under its own task's name; the
    # one ambiguous layout (AI2's {"question": {"stem", "choices"}, "answerKey"}, used by ARC and OpenBookQA)
    # reads as ARC: give OpenBookQA files under their own name.
    n = 0
    for task, recs in RECORDS.items():
        for r, *_ in recs:
            path = tmp_path / f"{task}{n}.jsonl"
            path.write_text(json.dumps(r) + "\n")
            n += 1
            mine = ev.load_task("mine", str(path))
            if task == "openbookqa" and isinstance(r.get("question"), dict):
                assert mine == ev.load_task("arc_easy", str(path)) != ev.load_task(task, str(path))
            else:
                assert mine == ev.load_task(task, str(path)), (task, r)
    assert n == sum(map(len, RECORDS.values()))


def test_unknown_layout_is_a_one_line_error_before_the_model_loads(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"prompt": "2+2=", "answer_text": "4"}) + "\n")
    with pytest.raises(ValueError) as e:
        ev.load_task("mine", str(path))
    msg = str(e.value)
    assert "\n" not in msg and "['answer_text', 'prompt']" in msg and "{query, choices, gold}" in msg
    assert "{premise, choice1, choice2, question} (copa)" in msg and "{context, question, answerA, answerB, answerC} (siqa)" in msg
    # from the command line: refused before the checkpoint is even read (this one does not exist)
    with pytest.raises(SystemExit, match=r"eval.py: error: mine: .*odd.jsonl has records with keys"):
        ev.main(["--ckpt", str(tmp_path / "none.pt"), "--tasks", f"mine={path}"])
    with pytest.raises(SystemExit, match=r"unknown task 'copa2'; .* or give a file: copa2=PATH"):
        ev.main(["--ckpt", str(tmp_path / "none.pt"), "--tasks", "copa2"])


def test_piqa_labels_file_and_json_array(tmp_path):
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps({"goal": g, "sol1": "a", "sol2": "b"}) + "\n" for g in "xy"))
    (tmp_path / "valid-labels.lst").write_text("1\n0\n")
    assert [it["gold"] for it in ev.load_task("piqa", str(tmp_path / "valid.jsonl"))] == [1, 0]
    siqa = [{k: v for k, v in r.items() if k != "label"} for r, *_ in RECORDS["siqa"]]   # Social IQa's release
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in siqa))
    (tmp_path / "dev-labels.lst").write_text("2\n3\n")                                 # 1-based
    assert [it["gold"] for it in ev.load_task("siqa", str(tmp_path / "dev.jsonl"))] == [1, 2]
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
    # Tolerance per continuation token: 1e-5 nats. fp32 rounding measured <= 1.2e-6 per token; leaving the 11
    # padding rows of the head in the softmax would add log(100288/100277) ~ 1.1e-4 per token to this
    # random model's scores: ten times the tolerance, so the masking is checked here too.
    requests = [r for it in all_items(tmp_path) for r in it["requests"]]
    assert any(len(sum(ev.encode_pair(enc, *r), [])) > model.config.block_size + 1 for r in requests)  # truncation hit
    reference = [brute_force(model, enc, *r) for r in requests]
    for batch_size in (1, 7):                              # 7: batches mix choices of several items, padded
        scores = ev.score_requests(model, enc, requests, batch_size=batch_size, progress=False)
        for r, (ll, greedy), (ll_ref, greedy_ref) in zip(requests, scores, reference):
            n_tokens = len(ev.encode_pair(enc, *r)[1])
            assert abs(ll - ll_ref) <= 1e-5 * n_tokens and greedy == greedy_ref, (r, ll, ll_ref)


def test_task_metrics_follow_scores(enc, model, tmp_path):
    # 12 items of 4 choices (seeded), expected acc / acc_norm from the brute-force scores and the harness's
    # definitions; the items are chosen so that picking the wrong end (argmin) would change both numbers.
    import random
    rng = random.Random(0)
    words = ["water", "fire", "a wooden table", "rock", "steam", "oil and salt", "ice", "air", "the sun", "x", "blue", "zebra"]
    items = [{"query": f"Question: what is thing {i}?\nAnswer:", "choices": rng.sample(words, 4), "gold": i % 4} for i in range(12)]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    res = ev.evaluate_task(model, enc, "mine", str(path), progress=False)
    acc, acc_norm, wrong_end = [], [], []
    for it in items:
        ll = np.array([brute_force(model, enc, it["query"], " " + c)[0] for c in it["choices"]])
        acc.append(np.argmax(ll) == it["gold"])
        acc_norm.append(np.argmax(ll / np.array([len(c) for c in it["choices"]])) == it["gold"])
        wrong_end.append((np.argmin(ll) == it["gold"], np.argmin(ll / np.array([len(c) for c in it["choices"]])) == it["gold"]))
    assert res["acc"] == np.mean(acc) and res["acc_norm"] == np.mean(acc_norm) and res["n"] == 12
    assert all(np.mean([acc, acc_norm], axis=1) != np.mean(wrong_end, axis=0))
    assert res["chance"] == 0.25 and res["split"] == "?"


def test_acc_norm_divides_by_characters_of_the_choice(tmp_path, monkeypatch):
    # The harness (lm_eval/api/task.py, process_results, multiple_choice): completion_len = len(choice) for
    # choice in doc_to_choice(doc) — the choice WITHOUT the " " target delimiter, in characters (not bytes:
    # that is acc_bytes). Scores are set by hand so that each wrong length flips the answer:
    #   item 1: "abc" / "abcdefgh", ll -3.3 / -8.5: per char -1.100 < -1.062 (gold 1 wins); per (char + 1)
    #           -0.825 > -0.944 (choice 0 would win)
    #   item 2: "ééé" / "abcde", ll -3.3 / -5.25: per char -1.10 < -1.05 (gold 1); per UTF-8 byte -0.55 > -1.05
    # acc (no division) picks choice 0 both times.
    path = tmp_path / "piqa.jsonl"
    path.write_text(json.dumps({"goal": "g", "sol1": "abc", "sol2": "abcdefgh", "label": 1}) + "\n"
                    + json.dumps({"goal": "h", "sol1": "ééé", "sol2": "abcde", "label": 1}) + "\n")
    lls = {" abc": -3.3, " abcdefgh": -8.5, " ééé": -3.3, " abcde": -5.25}
    monkeypatch.setattr(ev, "score_requests", lambda model, enc, requests, *a, **k: [(lls[c], False) for _, c in requests])
    res = ev.evaluate_task(None, None, "piqa", str(path), progress=False)
    assert res["acc"] == 0.0 and res["acc_norm"] == 1.0


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
        r = ev.measure_bpb(model, enc, ids, n_bytes, stride=stride, progress=False)
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
    r = ev.measure_bpb(model, enc, ids, stride=1, batch_size=3, progress=False)
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
@pytest.mark.slow                                     # 9 tasks x 100 items through a 100k-row head
@pytest.mark.skipif(not os.path.isdir(SHARED), reason=f"no benchmark files at {SHARED}")
def test_random_model_scores_at_chance(enc):
    model = tiny(n_layer=1, n_embd=16, block_size=256)
    n_tested = 0
    for task in ev.TASKS:
        try:
            path = ev.find_task_file(task, SHARED)
        except FileNotFoundError:
            continue
        r = ev.evaluate_task(model, enc, task, path, limit=100, batch_size=32, progress=False)
        n, acc = r["n"], r.get("acc_norm", r["acc"])
        if task == "lambada":
            assert acc <= 0.01, r
        elif task == "boolq":
            p_yes = np.mean([it["gold"] for it in ev.load_task(task, path, limit=100)])
            tol = 4 * math.sqrt(0.25 / n)
            assert min(p_yes, 1 - p_yes) - tol <= acc <= max(p_yes, 1 - p_yes) + tol, r
        else:
            assert abs(acc - r["chance"]) <= 4 * math.sqrt(r["chance"] * (1 - r["chance"]) / n), (task, r)
        n_tested += 1
    assert n_tested > 0


# ------------------------------------------------------------------------------------------------
# Command line, errors, samples.
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow                      # end to end: train.py, then eval.py
def test_eval_reads_a_checkpoint_train_wrote(four_lines, tmp_path, capsys):
    # train.py -> ckpt.pt -> eval.py: a compact tokenizer (300 ids, 320 head rows: 20 padding rows),
    # recorded by path. Expected values come from a plain forward of the weights read with torch.load.
    import train
    data, out = four_lines, tmp_path / "out"                      # tests/conftest.py
    train.main([f"--data={data}", f"--out_dir={out}", "--n_layer=2", "--n_embd=32", "--n_head=2", "--block_size=64",
                "--batch_size=4", "--max_iters=30", "--eval_interval=30", "--eval_iters=1", "--warmup_iters=2",
                "--lr=3e-3", "--sample_tokens=0", "--seed=1"])
    ckpt = torch.load(out / "ckpt.pt", weights_only=False)
    model = Transformer(ModelConfig(**ckpt["model_config"])).eval()
    model.load_state_dict(ckpt["model"])
    enc = load_tokenizer(os.path.join(os.path.dirname(data), "tok.json"))
    assert enc.n_vocab < model.config.vocab_size == 320                    # padding rows, masked by eval.py

    text = "All the world's a stage. To be, or not to be."          # one window: < 64 tokens
    (tmp_path / "held.txt").write_text(text)
    items = [{"query": "To be, or not to", "choices": ["be, that is the question.", "stage."], "gold": 0},
             {"query": "All the world's a", "choices": ["name.", "stage."], "gold": 1}]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    ev.main(["--ckpt", str(out / "ckpt.pt"), "--bpb", str(tmp_path / "held.txt"), "--tasks", f"mine={tmp_path / 'mine.jsonl'}",
             "--out", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    x = [enc.eot_token] + enc.encode_ordinary(text) + [enc.eot_token]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([x[:-1]]))[0][0, :, :enc.n_vocab], -1)
    nll = -sum(logp[i, t].item() for i, t in enumerate(x[1:]))
    assert report["bpb"]["tokens"] == len(x) - 1 and report["bpb"]["bytes"] == len(text.encode())
    assert report["bpb"]["bpb"] == pytest.approx(nll / math.log(2) / len(text.encode()), rel=1e-5)
    assert report["bpb"]["nats_per_token"] < 0.8 * math.log(enc.n_vocab)   # the trained weights, not an init
    lls = [[brute_force(model, enc, it["query"], " " + c)[0] for c in it["choices"]] for it in items]
    task = report["tasks"]["mine"]
    assert task["n"] == 2 and task["acc"] == np.mean([np.argmax(ll) == it["gold"] for ll, it in zip(lls, items)])
    assert task["acc_norm"] == np.mean([np.argmax(np.array(ll) / [len(c) for c in it["choices"]]) == it["gold"]
                                        for ll, it in zip(lls, items)])
    # the shard folder train.py read: its val split, every token and byte
    ev.main(["--ckpt", str(out / "ckpt.pt"), "--bpb", data, "--out", str(tmp_path / "r2.json")])
    meta = json.loads(open(os.path.join(data, "meta.json")).read())
    r2 = json.loads((tmp_path / "r2.json").read_text())["bpb"]
    assert (r2["tokens"], r2["bytes"]) == (meta["splits"]["val"]["tokens"], meta["splits"]["val"]["bytes"])
    assert r2["bpb"] < 0.8 * math.log2(enc.n_vocab) * r2["tokens"] / r2["bytes"]


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
    with pytest.raises(SystemExit, match="unknown task .mmlu2."):
        ev.main(["--ckpt", ckpt, "--tasks", "mmlu2"])
    with pytest.raises(SystemExit, match="checkpoint .* not found"):
        ev.main(["--ckpt", str(tmp_path / "none.pt"), "--sample", ""])
    with pytest.raises(SystemExit, match="does not exist"):
        ev.main(["--ckpt", ckpt, "--bpb", str(tmp_path / "missing.txt")])


def test_help_and_import_have_no_side_effects(capsys, script, tmp_path):
    with pytest.raises(SystemExit) as e:
        ev.main(["--help"])
    assert e.value.code == 0 and "(default: 16)" in capsys.readouterr().out
    (tmp_path / "imports.py").write_text(f"import sys\nsys.path.insert(0, {REPO!r})\nimport eval\n")
    done = script(tmp_path / "imports.py", cwd=tmp_path)                 # nothing printed, nothing written
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
