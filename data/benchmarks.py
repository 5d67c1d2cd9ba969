"""data/benchmarks.py — benchmark files to the items eval.py scores (plumbing: a first read skips).
The prompts as EleutherAI's lm-evaluation-harness builds them (lm_eval/tasks/<task>/*.yaml), from
JSON, CSV and text files: never a pickle, so a stranger's file holds data, never code."""
import csv
import gzip
import json
import os
import re
from contextlib import suppress

RECORD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)  # a bad record


# ---- The tasks. An item: {"requests": [(context, continuation) per choice], "gold": index,
# "chars": each choice's length in characters, "lens": the same where the harness reports acc_norm}.
def mc(context, choices, gold, norm=True):
    """A multiple-choice item: each choice is a continuation " " + choice of the same context (the
    harness's target_delimiter " "), so the choices' scores differ only in the choice's tokens."""
    chars = [len(c) for c in choices]
    return {"requests": [(context, " " + c) for c in choices], "gold": int(gold), "chars": chars,
            "lens": chars if norm else None}


def hellaswag(r):
    """The harness's preprocess removes WikiHow's bracket artifacts ("[title]", "[step]")."""
    def clean(text):
        return re.sub(r"\[.*?\]", "", text.strip().replace(" [title]", ". ")).replace("  ", " ")
    if "query" in r:                                   # processed layout: already cleaned
        return mc(r["query"], r["choices"], r["gold"])
    ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()   # Python's capitalize, as the harness does
    return mc(clean(r["activity_label"] + ": " + ctx), [clean(e) for e in r["endings"]], r["label"])


def arc(r, template="Question: {}\nAnswer:"):
    """ARC; OpenBookQA with template "{}" (the bare stem). Layouts: processed (query = the prompt),
    Hugging Face (choices {"text", "label"}), AI2's (question {"stem", "choices"})."""
    if "query" in r:
        return mc(r["query"], r["choices"], r["gold"])
    q, choices = r.get("question_stem", r.get("question")), r.get("choices")
    if isinstance(q, dict):
        q, choices = q["stem"], {k: [c[k] for c in q["choices"]] for k in ("text", "label")}
    key, labels = r["answerKey"].strip(), choices["label"]
    return mc(template.format(q), choices["text"], labels.index(key) if key in labels else -1)


def winogrande(r):
    """Partial scoring: each option fills the blank; all score the same rest of the sentence."""
    i, options, rest = r["sentence"].index("_"), [r["option1"], r["option2"]], r["sentence"]
    return {"requests": [(rest[:i] + o, " " + rest[i + 1:].strip()) for o in options],
            "gold": int(r["answer"]) - 1, "chars": [len(o) for o in options], "lens": None}


def lambada(r):
    """One request: the last word of OpenAI's "text", or "continuation"; acc = all tokens greedy."""
    ctx, _, word = r["text"].rpartition(" ") if "text" in r else (r["context"], 0, r["continuation"].lstrip())
    return {"requests": [(ctx, " " + word)], "gold": 0, "lens": None, "greedy": True}


def copa(r):
    """lm_eval/tasks/super_glue/copa/utils.py: premise minus its period + " because"/" therefore";
    a choice " " + it, first letter lowercased: 2 spaces after target_delimiter " " (as v0.4)."""
    connector = {"cause": "because", "effect": "therefore"}[r["question"]]
    lower = [" " + c[0].lower() + c[1:] for c in (r["choice1"], r["choice2"])]
    return mc(r["premise"].strip()[:-1] + " " + connector, lower, r["label"], norm=False)


# name: (record -> item, the split the harness scores, gold field, files tried in --data-dir)
TASKS = {
    "hellaswag": (hellaswag, "validation", "label", "hellaswag_val.jsonl"),
    "piqa": (lambda r: mc(f"Question: {r['goal']}\nAnswer:", [r["sol1"], r["sol2"]], r["label"]),
             "validation", "label", "piqa_valid.jsonl valid.jsonl"),
    "arc_easy": (arc, "test", "answerKey", "arc_easy_test.jsonl ARC-Easy-Test.jsonl"),
    "arc_challenge": (arc, "test", "answerKey", "arc_challenge_test.jsonl ARC-Challenge-Test.jsonl"),
    "winogrande": (winogrande, "validation", "answer", "winogrande_dev.jsonl winogrande_1.1/dev.jsonl"),
    "boolq": (lambda r: mc(f"{r['passage']}\nQuestion: {r['question']}?\nAnswer:", ["no", "yes"],
                           r["answer"] if "answer" in r else r["label"], norm=False),
              "validation", "answer", "boolq_dev.jsonl boolq/dev.jsonl"),           # acc only
    "openbookqa": (lambda r: arc(r, "{}"), "test", "answerKey",
                   "openbookqa_test.jsonl openbookqa_test.llmfoundry.jsonl Data/Main/test.jsonl"),
    "sciq": (lambda r: mc(f"{r['support'].lstrip()}\nQuestion: {r['question']}\nAnswer:", [
                 r[f"distractor{i}"] for i in "123"] + [r["correct_answer"]], 3),   # gold: the 4th
             "test", "correct_answer", "sciq_test.jsonl test.json sciq_validation.jsonl"),
    "lambada": (lambada, "test", "text", "lambada_openai_test.llmfoundry.jsonl lambada_test.jsonl"),
    "copa": (copa, "validation", "label", "copa_validation.jsonl COPA/val.jsonl"),
    "siqa": (lambda r: mc(f"Q: {r['context']} {r['question']}\nA:", [r["answerA"], r["answerB"],
                          r["answerC"]], int(r["label"]) - 1, norm=False),    # label "1".."3"
             "validation", "label", "siqa_validation.jsonl socialiqa-train-dev/dev.jsonl"),
    "mmlu": (None, "test", "answer", "mmlu mmlu/data"),
    "ceval": (None, "val", "answer", "ceval ceval-exam"),     # its test answers are not public
    "cmmlu": (None, "test", "answer", "cmmlu cmmlu/data")}
LAYOUTS = [   # a file's layout (--tasks NAME=PATH; llm-foundry's COPA): the first its keys fit
    (("query", "choices", "gold"), "arc_easy"), (("context", "continuation"), "lambada"),
    (("premise", "choice1", "choice2", "question"), "copa"),
    (("context", "question", "answerA", "answerB", "answerC"), "siqa"),
    (("ctx_a", "ctx_b", "endings", "activity_label"), "hellaswag"),
    (("goal", "sol1", "sol2"), "piqa"), (("sentence", "option1", "option2", "answer"), "winogrande"),
    (("support", "question", "distractor1", "correct_answer"), "sciq"),
    (("passage", "question"), "boolq"), (("question_stem", "choices", "answerKey"), "openbookqa"),
    (("question", "answerKey"), "arc_easy"), (("question", "choices", "answer"), "mmlu"),
    (("Question", "A", "B", "C", "D", "Answer"), "cmmlu"),
    (("question", "A", "B", "C", "D", "answer"), "ceval"), (("text",), "lambada")]   # OpenAI's


def detect_layout(name, records, path):
    """The task whose template reads `records`: a known name's own if it reads the first record,
    else the first of LAYOUTS that fits, else a known name's own (build_items finds the bad one)."""
    if not records:
        raise ValueError(f"{name}: {path} holds no records")
    build = TASKS.get(name, (None,))[0]               # None: a name of your own, or an exam
    with suppress(*RECORD_ERRORS):                     # not its layout, or a bad record
        if build and build(records[0]):                # an item: a non-empty dict
            return name
    keys = set(records[0]) if isinstance(records[0], dict) else set()
    task = next((task for need, task in LAYOUTS if keys >= set(need)), name if build else None)
    if not task:
        raise ValueError(f"{name}: {path} has records with keys {sorted(keys)}; eval.py reads "
                         + "; ".join(f"{{{', '.join(need)}}} ({task})" for need, task in LAYOUTS))
    return task


def read_records(path):
    """JSON objects of a .jsonl file (one per line) or a .json array; plain or gzip (by magic)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        if text.lstrip().startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:                            # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} is not JSON lines / a JSON array of records ({e})") from None


def find_task_file(name, data_dir, required=True):
    """The first of the task's files (TASKS, plain or .gz) in data_dir; None if there is none."""
    files = TASKS[name][3].split()                     # ../shared/data/eval's name first
    paths = [os.path.join(data_dir, f + gz) for f in files for gz in ("", ".gz")]
    if required and not any(map(os.path.exists, paths)):
        raise FileNotFoundError(f"{name}: expected {paths[0]} (or .gz, {', '.join(files[1:])}): "
                                "see --help for where to get it, or pass --data-dir DIR / "
                                f"--tasks {name}=PATH")
    return next((p for p in paths if os.path.exists(p)), None)


def build_items(records, build, where, task, field):
    """[build(record)]; a record off the layout, or whose gold is no choice, is a one-line error."""
    items = []
    for i, r in enumerate(records, 1):                 # record numbers from 1, as an editor's
        try:
            items.append(build(r))
        except RECORD_ERRORS as e:                     # our own ValueErrors say what is wrong
            why = f": {e}" if type(e) is ValueError else f" is not a {task} record ({e!r})"
            raise ValueError(f"{where} record {i}{why}") from None
        if not 0 <= items[-1]["gold"] < (n := len(items[-1]["requests"])):   # -1 would be the last
            why = f"field {field!r} = {r.get(field)!r} picks none of its {n} choices"
            raise ValueError(f"{where} record {i}: {why if n else 'no choices'}")
    return items


def load_task(name, path, limit=None, shots=0):
    """Items of a task file or exam folder (the first `limit`): its name's or layout's template."""
    records = None if os.path.isdir(path) else read_records(path)
    if records is None or (task := detect_layout(name, records, path)) in EXAMS:
        return load_exam(name, path, limit, shots)     # an exam folder, or Hugging Face's records
    records = records[:limit]
    if name in TASKS and task != name:                 # e.g. llm-foundry's COPA: query, choices
        print(f"{name}: {path} is not {name}'s layout but {task}'s: scored with {task}'s template")
    if task in ("piqa", "siqa") and "label" not in records[0]:   # original releases: the labels
        labels = re.sub(r"\.jsonl(\.gz)?$", "-labels.lst", path)  # in a side file, one per line
        if not os.path.exists(labels):
            raise FileNotFoundError(f"{name}: {path} has no labels and {labels} is missing")
        with open(labels) as f:
            records = [{**r, "label": y} for r, y in zip(records, f.read().split())]
    field = "gold" if "query" in records[0] else TASKS[task][2]   # what an error message names
    return build_items(records, TASKS[task][0], f"{path}:", task, field)


# ---- The exams of the paper's headline table (../shared/PAPER.md, Headline): MMLU, C-Eval, CMMLU.
EXAMS = {  # family: (description, {} = subject; answer cue) as in lm-evaluation-harness 4e7e0d4
    "mmlu": ("The following are multiple choice questions (with answers) about {}.\n\n", "Answer:"),
    "ceval": ("以下是中国关于{}的单项选择题，请选出其中的正确答案。\n\n", "答案："),   # the harness drops 考试
    "cmmlu": ("以下是关于{}的单项选择题，请直接给出正确答案的选项。\n\n", "答案：")}


def exam_split(path, split):
    """(family, {subject: records}) of a split or None: CSVs path/split/SUBJECT(_split).csv, else a
    Hugging Face export path/split.jsonl or the JSON file `path` (family by keys; field subject)."""
    folder, subjects, family = os.path.join(path, split), {}, None
    for f in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if f.endswith(".csv"):                         # utf-8-sig: drops a byte-order mark
            with open(os.path.join(folder, f), encoding="utf-8-sig", newline="") as file:
                head, *rows = list(csv.reader(file)) or [[]]
            start = ",".join(head[:2]).lower()         # the header: C-Eval's, CMMLU's (",Question")
            family = {"id,question": "ceval", ",question": "cmmlu"}.get(start, "mmlu")
            if family == "mmlu":                       # no header: the first row is a question
                head, rows = ["question", "a", "b", "c", "d", "answer"], [head] + rows if head else []
            subjects[re.sub(f"(_{split})?\\.csv$", "", f)] = [dict(zip(head, row)) for row in rows]
    for file in [path] if os.path.isfile(path) else [folder + ".jsonl", folder + ".json"]:
        if not subjects and os.path.isfile(file):
            family = detect_layout("exam", records := read_records(file), file)
            for r in records:
                subjects.setdefault(r.get("subject", os.path.basename(path)), []).append(r)
    return (family, subjects) if subjects and family in EXAMS else None


def exam_item(r, context, cue):
    """A question as the harness asks it: context + "question\nA. ..\nD. ..\n" + cue; the choices:
    the letters (" A".." D"); "chars": the options' lengths (for the shortest-answer baseline)."""
    r = {str(k).strip().lower(): v for k, v in r.items()}   # CMMLU capitalises: Question, Answer
    choices = r["choices"] if "choices" in r else [r["a"], r["b"], r["c"], r["d"]]
    answer = r["answer"]                               # a letter (CSV) or 0-3 (Hugging Face)
    gold = answer if type(answer) is int else {"A": 0, "B": 1, "C": 2, "D": 3}.get(str(answer).strip(), -1)
    if len(choices) != 4 or not 0 <= gold < 4:
        raise ValueError(f"field 'answer' = {answer!r} is not one of A-D (or 0-3) of 4 choices")
    prompt = r["question"].strip() + "".join(f"\n{x}. {c}" for x, c in zip("ABCD", choices))
    return {**mc(f"{context}{prompt}\n{cue}", "ABCD", gold, norm=False), "chars": [len(c) for c in choices]}


def load_exam(name, path, limit=None, shots=0):
    """Items of an exam (the first `limit` per subject) with their subject and split. The files tell
    the family (under another's name: scored as theirs, said in one line), the family the split."""
    found = {s: exam_split(path, s) for s in ("test", "val", "dev")}
    if not (family := next((f[0] for f in found.values() if f), None)):
        raise FileNotFoundError(f"{name}: {path} has neither test/ nor val/ nor dev/ of "
                                "per-subject CSVs (MMLU, C-Eval, CMMLU) nor a test.jsonl")
    split, dev = TASKS[family][1], found["dev"] if shots and os.path.isdir(path) else None
    if name in EXAMS and family != name:
        print(f"{name}: {path} is in {family}'s layout: scored as {family} (its split, {split}, and header)")
    if not found[split] or (shots and not dev):
        missing, why = ("dev", "--shots needs") if found[split] else (split, f"the harness scores for {family}")
        raise FileNotFoundError(f"{name}: {path} has no {missing}/ split (per-subject CSVs or "
                                f"{missing}.jsonl), which {why}")
    with open(os.path.join(os.path.dirname(__file__), "exam_subjects.json"), encoding="utf-8") as f:
        names = json.load(f).get(family, {})           # C-Eval's and CMMLU's Chinese subject names
    items, (description, cue) = [], EXAMS[family]
    for subject, records in found[split][1].items():   # in file-name order, as the harness
        where, examples = f"{os.path.join(path, split)}: {subject}", dev[1].get(subject, []) if dev else []
        if len(examples) < shots:                      # --shots K: the first K dev examples
            raise ValueError(f"{where}: {len(examples)} dev examples, fewer than --shots={shots}")
        shown = build_items(examples[:shots], lambda r: exam_item(r, "", cue), f"{where} dev", family, "")
        context = description.format(names.get(subject, subject.replace("_", " "))) + "".join(
            "".join(it["requests"][it["gold"]]) + "\n\n" for it in shown)   # "...Answer:" + " B"
        items += [{**it, "subject": subject, "split": split} for it in build_items(
            records[:limit], lambda r: exam_item(r, context, cue), where, family, "")]
    return items
