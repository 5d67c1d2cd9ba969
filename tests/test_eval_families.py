# Tests of eval.py's exams (MMLU, C-Eval, CMMLU) in their public layouts, written here as small fixtures:
# the exact prompt of a known record (zero- and few-shot), the split scored, per-subject and macro accuracy,
# Chinese text and answer letters through a compact tokenizer; a known task name in another known layout;
# and the command line's bad inputs (one-line errors, nothing destroyed, nothing run from a pickle).
import csv
import json
import os
import re
from dataclasses import asdict

import numpy as np
import pytest
import torch

import eval as ev
from model import Transformer, model_config
from tokenizer_compress import load_tokenizer, tokenizer_identity

pytestmark = pytest.mark.usefixtures("one_thread")

# MMLU's data.tar: no header; question,A,B,C,D,answer. The first test record of abstract_algebra.
MMLU_DEV = [["Find all zeros in the indicated finite field of the given polynomial with coefficients in that "
             "field. x^5 + 3x^3 + x^2 + 2x in Z_5", "0", "1", "0,1", "0,4", "D"]]
MMLU_TEST = [[" Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field. ", "0", "1", "2", "3", "B"],
             ["Statement 1 | If aH is an element of a factor group, then |aH| divides |a|.", "True, True",
              "False, False", "True, False", "False, True", "B"]]
# C-Eval's ceval-exam.zip: header id,question,A,B,C,D,answer(,explanation); test hides the answers.
CEVAL_DEV = [["0", "使用位填充方法，以01111110为位首flag，数据为011011111111111111110010，求问传送时要添加几个0____", "1",
              "2", "3", "4", "C", "1. 连续五个1之后补0"]]
CEVAL_VAL = [["0", "下列设备属于资源子网的是____。", "计算机软件", "网桥", "交换机", "路由器", "A"]]
# CMMLU's release: header ",Question,A,B,C,D,Answer" (a pandas index column first).
CMMLU_TEST = [["0", "肉类鲜度变化的过程是", "僵直、成熟、自溶、腐败", "成熟、僵直、自溶、腐败", "自溶、僵直、成熟、腐败",
               "僵直、自溶、成熟、腐败", "A"]]


def write_csv(path, rows, header=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(([header] if header else []) + rows)


def exams(tmp_path):
    """The three releases' folders, one subject each (C-Eval's test split without answers, as published)."""
    write_csv(tmp_path / "mmlu/dev/abstract_algebra_dev.csv", MMLU_DEV)
    write_csv(tmp_path / "mmlu/test/abstract_algebra_test.csv", MMLU_TEST)
    head = ["id", "question", "A", "B", "C", "D", "answer"]
    write_csv(tmp_path / "ceval/dev/computer_network_dev.csv", CEVAL_DEV, head + ["explanation"])
    write_csv(tmp_path / "ceval/val/computer_network_val.csv", CEVAL_VAL, head)
    write_csv(tmp_path / "ceval/test/computer_network_test.csv", [r[:6] for r in CEVAL_VAL], head[:6])
    for split in ("dev", "test"):
        write_csv(tmp_path / f"cmmlu/{split}/food_science.csv", CMMLU_TEST, ["", "Question", "A", "B", "C", "D", "Answer"])
    return {name: str(tmp_path / name) for name in ("mmlu", "ceval", "cmmlu")}


MMLU_PROMPT = ("The following are multiple choice questions (with answers) about abstract algebra.\n\n"
               "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer:")
MMLU_SHOT = ("Find all zeros in the indicated finite field of the given polynomial with coefficients in that field. "
             "x^5 + 3x^3 + x^2 + 2x in Z_5\nA. 0\nB. 1\nC. 0,1\nD. 0,4\nAnswer: D\n\n")
CEVAL_PROMPT = "以下是中国关于计算机网络的单项选择题，请选出其中的正确答案。\n\n下列设备属于资源子网的是____。\nA. 计算机软件\nB. 网桥\nC. 交换机\nD. 路由器\n答案："
CMMLU_PROMPT = ("以下是关于食品科学的单项选择题，请直接给出正确答案的选项。\n\n肉类鲜度变化的过程是\nA. 僵直、成熟、自溶、腐败\n"
                "B. 成熟、僵直、自溶、腐败\nC. 自溶、僵直、成熟、腐败\nD. 僵直、自溶、成熟、腐败\n答案：")


def test_exam_prompts_are_the_harness_strings(tmp_path):
    paths = exams(tmp_path)
    mmlu = ev.load_task("mmlu", paths["mmlu"])
    assert [it["gold"] for it in mmlu] == [1, 1] and {it["split"] for it in mmlu} == {"test"}
    assert mmlu[0]["requests"] == [(MMLU_PROMPT, " A"), (MMLU_PROMPT, " B"), (MMLU_PROMPT, " C"), (MMLU_PROMPT, " D")]
    assert mmlu[0]["lens"] is None                        # acc_norm / len("A") = acc: not reported twice
    header, question = MMLU_PROMPT.split("\n\n")
    assert ev.load_task("mmlu", paths["mmlu"], shots=1)[0]["requests"][0][0] == header + "\n\n" + MMLU_SHOT + question
    ceval = ev.load_task("ceval", paths["ceval"])       # the val split: test answers are hidden
    assert ceval[0]["requests"][0] == (CEVAL_PROMPT, " A") and ceval[0]["gold"] == 0 and ceval[0]["split"] == "val"
    shot = ev.load_task("ceval", paths["ceval"], shots=1)[0]["requests"][0][0]
    assert shot.startswith(CEVAL_PROMPT.split("\n\n")[0] + "\n\n使用位填充方法") and "\nD. 4\n答案： C\n\n下列设备" in shot
    cmmlu = ev.load_task("cmmlu", paths["cmmlu"])
    assert cmmlu[0]["requests"][0] == (CMMLU_PROMPT, " A") and cmmlu[0]["split"] == "test"


def test_hugging_face_json_layout(tmp_path):
    # cais/mmlu exported as JSON lines: {"question", "subject", "choices", "answer": 0-3}
    rows = [{"question": r[0], "subject": "abstract_algebra", "choices": r[1:5], "answer": "ABCD".index(r[5])}
            for r in MMLU_TEST]
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf/test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "hf/dev.jsonl").write_text(json.dumps({**rows[0], "question": MMLU_DEV[0][0], "choices": MMLU_DEV[0][1:5],
                                                       "answer": 3}) + "\n")
    csv_items = ev.load_task("mmlu", exams(tmp_path)["mmlu"], shots=1)
    assert ev.load_task("mmlu", str(tmp_path / "hf"), shots=1) == csv_items
    assert ev.load_task("mine", str(tmp_path / "hf/test.jsonl"))[0]["requests"][0] == (MMLU_PROMPT, " A")


def test_per_subject_and_macro_accuracy(tmp_path, monkeypatch):
    # A model that always answers " A": subject x has golds A, A, B (2/3), subject y has B (0/1).
    # acc over questions = 2/4 (the harness's group figure, weight_by_size); acc_macro = (2/3 + 0) / 2.
    rows = {"x": [["q1", "a", "b", "c", "d", "A"], ["q2", "a", "b", "c", "d", "A"], ["q3", "a", "b", "c", "d", "B"]],
            "y": [["q4", "a", "b", "c", "d", "B"]]}
    for subject, r in rows.items():
        write_csv(tmp_path / f"m/test/{subject}_test.csv", r)
    monkeypatch.setattr(ev, "score_requests", lambda model, enc, reqs, *a, **k: [(-1.0 if c == " A" else -2.0, False)
                                                                                for _, c in reqs])
    res = ev.evaluate_task(None, None, "mmlu", str(tmp_path / "m"), progress=False)
    assert res["acc"] == 0.5 and res["acc_macro"] == pytest.approx(1 / 3) and res["chance"] == 0.25
    assert res["subjects"] == {"x": {"n": 3, "acc": pytest.approx(2 / 3)}, "y": {"n": 1, "acc": 0.0}}
    assert ev.evaluate_task(None, None, "mmlu", str(tmp_path / "m"), limit=1, progress=False)["n"] == 2  # per subject


def test_chinese_and_letters_round_trip_a_compact_tokenizer(tmp_path):
    from conftest import make_shards
    docs = [CEVAL_PROMPT + " A\n\n" + CMMLU_PROMPT + " B", MMLU_PROMPT + " C\nD. 3"] * 6
    make_shards(tmp_path, docs, K=400)
    enc = load_tokenizer(str(tmp_path / "tok.json"))
    for prompt in (MMLU_PROMPT, CEVAL_PROMPT, CMMLU_PROMPT):
        assert enc.decode(enc.encode_ordinary(prompt)) == prompt
        for letter in "ABCD":
            ctx, cont = ev.encode_pair(enc, prompt, " " + letter)
            assert enc.decode(ctx) == prompt and enc.decode(cont) == " " + letter


def test_exam_errors_are_one_line(tmp_path):
    paths = exams(tmp_path)
    cases = [("mmlu", str(tmp_path / "ceval/dev"), 0, "has neither test/ nor val/ nor dev/"),
             ("mmlu", paths["mmlu"], 2, "1 dev examples, fewer than --shots=2"),
             ("cmmlu", paths["mmlu"] + "x", 0, "mmlux does not exist")]
    os.rename(tmp_path / "ceval/val", tmp_path / "ceval/hidden")
    cases.append(("ceval", paths["ceval"], 0, "has no val/ split .* the harness scores for ceval"))
    write_csv(tmp_path / "bad/test/s_test.csv", [["q", "a", "b", "c", "d", "E"]])
    cases.append(("mmlu", str(tmp_path / "bad"), 0, r"bad/test: s record 1: field 'answer' = 'E' is not one of A-D"))
    for name, path, shots, msg in cases:
        with pytest.raises((ValueError, FileNotFoundError), match=msg) as e:
            ev.load_task(name, path, shots=shots) if os.path.exists(path) else ev.resolve_tasks(f"{name}={path}", ".")
        assert "\n" not in str(e.value)


def test_known_name_in_another_known_layout(tmp_path, capsys):
    # llm-foundry's processed COPA under the name copa: read with the processed layout, said in one line
    path = tmp_path / "copa.jsonl"
    path.write_text(json.dumps({"query": "The kettle whistled, so", "choices": ["it boiled.", "it froze."], "gold": 0}))
    assert ev.load_task("copa", str(path))[0]["requests"] == [("The kettle whistled, so", " it boiled."),
                                                              ("The kettle whistled, so", " it froze.")]
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "copa" in out and "arc_easy" in out
    ev.load_task("mmlu", exams(tmp_path)["cmmlu"])       # a CMMLU folder under the name mmlu: scored as cmmlu
    assert capsys.readouterr().out.strip() == f"mmlu: {tmp_path / 'cmmlu'} is in cmmlu's layout: scored as cmmlu " \
                                              "(its split, test, and header)"


# ------------------------------------------------------------------------------------------------
# The command line's bad inputs: a one-line error before any work, nothing destroyed, no pickle run.
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    enc = load_tokenizer("cl100k_base")
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=100288, n_layer=1, n_embd=16, n_head=1, block_size=32))
    path = tmp_path_factory.mktemp("ckpt") / "ckpt.pt"
    torch.save({"model": model.state_dict(), "model_config": asdict(model.config), "tokenizer": tokenizer_identity(enc),
                "step": 3}, path)
    return path


class Evil:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):                                 # what torch.load(weights_only=False) would call
        return os.system, (f"echo pwned > {self.sentinel}",)


@pytest.mark.slow                      # end to end: eval.py's command line, case after case
def test_cli_bad_inputs(ckpt, tmp_path, monkeypatch):
    enc = load_tokenizer("cl100k_base")
    evil, sentinel = tmp_path / "evil.pt", tmp_path / "PWNED"
    torch.save({"model": {}, "model_config": {}, "x": Evil(sentinel)}, evil)
    (tmp_path / "text.txt").write_text("Hello there. " * 20)
    text = str(tmp_path / "text.txt")
    tasks = tmp_path / "t.jsonl"
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"query": "q", "choices": ["a", "b"], "gold": 0}) + "\n"
                    + json.dumps({"query": "q", "choices": ["a", "b"], "gold": -1}) + "\n")
    empty = tmp_path / "none.jsonl"
    empty.write_text(json.dumps({"query": "q", "choices": [], "gold": 0}) + "\n")
    shards = tmp_path / "shards"
    shards.mkdir()
    meta = {"tokenizer": tokenizer_identity(enc), "dtype": "uint16", "splits": {"val": {"bytes": 3}}}
    (shards / "meta.json").write_text(json.dumps(meta))
    (shards / "val.bin").write_bytes(b"\x01\x00\x02")                      # 3 bytes: 1.5 uint16 ids
    f64 = tmp_path / "f64"
    f64.mkdir()
    (f64 / "meta.json").write_text(json.dumps({**meta, "dtype": "float64"}))
    (f64 / "val.bin").write_bytes(np.zeros(4).tobytes())
    c = ["--ckpt", str(ckpt)]
    table = [
        (["--ckpt", str(evil), "--bpb", text], "--trust_checkpoint"),
        (c + ["--bpb", text, "--out", str(ckpt)], "is the checkpoint --ckpt this run reads"),
        (c + ["--bpb", text, "--out", text], "is the --bpb data this run reads"),
        (c + ["--bpb", text, "--out", str(tmp_path)], "is a folder; name a file in it"),
        (c + ["--bpb", text, "--out", str(tmp_path / "no/r.jsonl")], "does not exist"),
        (c + ["--bpb", text, "--out", str(tasks.with_suffix(".csv"))], None),   # fine: a new file
        (c + ["--tasks", f"mine={gold}"], r"gold.jsonl: record 2: field 'gold' = -1 picks none of its 2 choices"),
        (c + ["--tasks", f"mine={empty}"], r"none.jsonl: record 1: no choices"),
        (c + ["--bpb", str(shards)], r"val.bin: 3 bytes are no whole number of 'uint16' token ids"),
        (c + ["--bpb", str(f64)], r"no whole number of 'float64' token ids \(meta.json field 'dtype'\)"),
        (c + ["--sample", "x", "--temperature", "-1"], r"--temperature must be 0 \(greedy\) or positive \(got -1.0\)"),
        (c + ["--sample", "x", "--temperature", "nan"], r"--temperature must be 0"),
        (c + ["--sample", "x", "--top-k", "-2"], r"--top-k must be 0 \(all tokens\) or positive"),
        (c + ["--sample", "x", "--threads", "0"], r"--threads must be at least 1"),
        (c + ["--sample", "x", "--max-new-tokens", "0"], r"--max-new-tokens must be at least 1 \(got 0\)"),
        (c + ["--sample", "x", "--device", "banana"], r"(?i)banana"),
        (c + ["--sample", " x" * 40], r"no room left in the model's context of 32; shorten it"),
        (c + ["--tasks", f"mmlu={tmp_path}"], r"mmlu: .* has neither test/ nor val/"),
        (["--plot", str(tmp_path)], r"has no log.jsonl; name folders that train.py wrote"),
    ]
    if not torch.cuda.is_available():
        table.append((c + ["--sample", "x", "--device", "cuda"], r"(?i)cuda"))
    before = ckpt.read_bytes()
    for argv, msg in table:
        if msg is None:
            ev.main(argv)
            continue
        with pytest.raises(SystemExit) as e:
            ev.main(argv)
        err = str(e.value.code)
        assert err.startswith("eval.py: error: ") and "\n" not in err and re.search(msg, err), (argv, err)
        assert "--init_from" not in err and "--out_dir" not in err and "ckpt.pt is not" not in err, err
    assert not sentinel.exists() and ckpt.read_bytes() == before
    monkeypatch.setattr(ev, "run", lambda args: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(SystemExit, match=r"^eval.py: interrupted; .*\(--out\)$"):
        ev.main(c + ["--sample", "x"])


def test_results_accumulate(ckpt, tmp_path):
    (tmp_path / "t.txt").write_text("Hello there. " * 20)
    piqa = tmp_path / "p.jsonl"
    piqa.write_text(json.dumps({"goal": "g", "sol1": "a", "sol2": "b", "label": 0}) + "\n")
    out = str(ckpt).replace(".pt", "_eval.jsonl")
    if os.path.exists(out):
        os.remove(out)
    ev.main(["--ckpt", str(ckpt), "--bpb", str(tmp_path / "t.txt")])
    first = open(out).read()
    ev.main(["--ckpt", str(ckpt), "--tasks", f"piqa={piqa}"])
    text = open(out).read()
    assert text.startswith(first) and len(text.splitlines()) == 2
    runs = [json.loads(line) for line in text.splitlines()]
    assert "bpb" in runs[0] and "tasks" not in runs[0] and runs[1]["tasks"]["piqa"]["n"] == 1
    (tmp_path / "mine.txt").write_text("my notes, not results\n")
    with pytest.raises(SystemExit, match="is not an eval.py results file"):
        ev.main(["--ckpt", str(ckpt), "--bpb", str(tmp_path / "t.txt"), "--out", str(tmp_path / "mine.txt")])
    assert (tmp_path / "mine.txt").read_text() == "my notes, not results\n"


def test_plot_calls_curves_draw(tmp_path, monkeypatch):
    import importlib.util
    import sys
    import types
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.jsonl").write_text(json.dumps({"round": 1, "step": 1, "tokens": 8, "loss": 3.0}) + "\n")
        runs.append(str(tmp_path / name))
    calls = []
    monkeypatch.setitem(sys.modules, "curves", types.SimpleNamespace(draw=lambda dirs, png: calls.append((dirs, png))))
    ev.main(["--plot", ",".join(runs), "--out", str(tmp_path / "cmp.png")])
    assert calls == [(runs, str(tmp_path / "cmp.png"))]
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else find_spec(n, *a))
    with pytest.raises(SystemExit, match="--plot needs matplotlib: pip install matplotlib"):
        ev.main(["--plot", ",".join(runs), "--out", str(tmp_path / "cmp.png")])
