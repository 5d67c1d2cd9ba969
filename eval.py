"""
eval.py — measure a nanopangu checkpoint: bits per byte, benchmarks, samples; compare runs' curves.

    python eval.py --ckpt out/ckpt.pt --bpb held_out.txt.gz       # or a prepare.py folder: val.bin
    python eval.py --ckpt out/ckpt.pt --tasks all --limit 200     # the task files present, 200 each
    python eval.py --ckpt out/ckpt.pt --tasks mine=my_items.jsonl # any name: layout from the keys
    python eval.py --ckpt out/ckpt.pt --tasks mmlu=~/mmlu/data,ceval=~/ceval-exam --shots 5
    python eval.py --ckpt out/ckpt.pt --sample "Once upon a time" --temperature 0.8 --top-k 200
    python eval.py --plot out_a,out_b --out cmp.png               # runs' training curves, overlaid

1. Bits per byte (--bpb). A loss per token cannot compare tokenizers: a compressed vocabulary (the
   paper's compact tokenizer) cuts text into more, easier tokens. Dividing the total surprise by the
   UTF-8 bytes of the raw text takes the tokenizer out: bpb = sum(-log2 p(token)) / bytes (paper,
   Compact Tokenizer; ../shared/PAPER.md §1). Documents are read as data/prepare.py reads them, each
   followed by <|endoftext|> (scored, no bytes: as train.py's val bpb); one <|endoftext|> starts the
   stream so that the first token is predicted too. Windows of block_size tokens slide by --stride
   (default block_size/2); each scores only the tokens no earlier window scored: every token once,
   with at least block_size - stride tokens of context after the first window. Perplexity is per
   token of the checkpoint's tokenizer: it compares only models that share one; bpb always.
2. Benchmarks (--tasks), scored as EleutherAI's lm-evaluation-harness does, so that numbers sit next
   to published tables: a choice is a (context, " " + choice) pair scored by the summed fp32
   log-prob of its tokens; acc: the best-scored choice is the gold one; acc_norm: the same after
   dividing by the choice's length in characters. LAMBADA: acc = every token of " word" is the
   greedy one, ppl = exp(-mean log-likelihood). The exams of the paper's table (MMLU, C-Eval, CMMLU)
   are folders in their public layouts: letter choices after a subject header (EXAMS below).
   One deliberate difference: eval.py masks the head's padding rows (vocab_size is rounded up to a
   multiple of 64) before the softmax; the harness on an exported model (export.py) does not, so
   log-likelihoods differ by up to ~0.01 nats per token, about the same for every choice.
3. Samples (--sample PROMPT) with the KV cache of model.generate.
Results: each run appends one JSON line to --out (<ckpt without .pt>_eval.jsonl); earlier runs stay.
Safe from a stranger: task files and text (read as JSON, CSV, text: nothing is unpickled) and a
checkpoint (torch.load(weights_only=True)), unless you pass --trust_checkpoint (a full unpickle).

Files: --data-dir (default ../shared/data/eval, see ../shared/data/README.md) under the names in
TASKS, plain or gzipped, or --tasks NAME=PATH. Public originals: HellaSwag
github.com/rowanz/hellaswag; PIQA yonatanbisk.com/piqa (+ -labels.lst); ARC, OpenBookQA, SciQ,
Social IQa allenai.org/data; WinoGrande github.com/allenai/winogrande; BoolQ
github.com/google-research-datasets/boolean-questions; LAMBADA OpenAI's lambada_test.jsonl; COPA
super.gluebenchmark.com; MMLU people.eecs.berkeley.edu/~hendrycks/data.tar (dev/, test/ of
SUBJECT_test.csv); C-Eval huggingface.co/datasets/ceval/ceval-exam (dev/, val/); CMMLU
github.com/haonan-li/CMMLU (dev/, test/ of SUBJECT.csv). Also read: processed
{"query","choices","gold"} and {"context","continuation"} files and Hugging Face layouts. Any
NAME=PATH is read with the first layout of LAYOUTS its first record has; a known name whose file is
another known layout (llm-foundry's COPA {"query","choices","gold"}) says so and uses it.
"""
import argparse
import csv
import gzip
import json
import math
import os
import re
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(HERE), "shared", "data", "eval")
# what reading a record that does not fit its layout raises
RECORD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


# ---- Checkpoint, tokenizer, log-probabilities. ---------------------------------------------------
def load(ckpt_path, device="cpu", trust=False):
    """(model in eval mode, the checkpoint's own tiktoken Encoding, checkpoint dict)."""
    from model import load_model
    from tokenizer_compress import load_tokenizer, tokenizer_identity
    model, ckpt = load_model(ckpt_path, device, trust=trust)
    tok = ckpt.get("tokenizer") or {}
    if "source" not in tok:
        raise ValueError(f"{ckpt_path} records no tokenizer; it was not written by train.py")
    enc = load_tokenizer(tok["source"])
    if tokenizer_identity(enc)["sha256"] != tok["sha256"]:   # e.g. the file was rewritten since
        raise ValueError(f"tokenizer {tok['source']} is not the one {ckpt_path} was trained with")
    if enc.n_vocab > model.config.vocab_size:
        raise ValueError(f"tokenizer has {enc.n_vocab} ids, the model {model.config.vocab_size}")
    return model, enc, ckpt


def hidden_states(model, idx):
    """The final (normed) hidden states (B, T, C) of token ids idx (B, T), in fp32.
    Why not just the logits: the LM head is V x C, and with a 100k vocabulary it costs far more than
    the whole body of a tiny model, but we need log-probs only at a few positions (a choice's
    continuation). So we run the trunk and apply the head ourselves where needed (token_logprobs).
    tests/test_eval.py checks this against the plain full-logits forward."""
    with torch.autocast("cuda", dtype=torch.bfloat16) if idx.is_cuda else nullcontext():
        return model.trunk(idx).float()


def token_logprobs(model, h, targets, n_vocab, chunk=512):
    """log p(target) in fp32 (N,), and whether target is the greedy (top-logit) token (N,), for
    hidden rows h (N, C) and targets (N,). The head may have more rows than the tokenizer has ids
    (vocab_size is padded to a multiple of 64); those rows are never valid tokens, so their logits
    are -inf before the softmax, which runs over the n_vocab real ids ("uniform" = 1/n_vocab)."""
    logp, greedy = [], []
    for i in range(0, len(h), chunk):                  # chunks bound the (rows, V) logits in memory
        logits = model.lm_head(h[i:i + chunk].float()).float()              # (rows, V)
        logits[:, n_vocab:] = float("-inf")
        t = targets[i:i + chunk, None]                 # (rows, 1): the index for gather
        logp.append(torch.log_softmax(logits, dim=1).gather(1, t)[:, 0])   # beats logsumexp on CPU
        greedy.append(logits.gather(1, t)[:, 0] >= logits.amax(dim=1))
    return torch.cat(logp), torch.cat(greedy)


# ---- 1. Bits per byte of held-out text. ----------------------------------------------------------
def text_bytes(enc, ids):
    """UTF-8 bytes of the text that token ids encode: byte-level BPE is lossless, so this is exactly
    the raw text's byte count; special tokens (<|endoftext|>) are separators and carry no bytes."""
    specials = np.fromiter(enc._special_tokens.values(), dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    return len(enc.decode_bytes(ids[~np.isin(ids, specials)].tolist()))


def load_bpb_data(path, enc, ckpt_tokenizer):
    """(token ids, UTF-8 byte count of the raw text) of held-out data: a shard folder written by
    data/prepare.py (its val.bin; the tokenizer must be the checkpoint's) or text files it reads."""
    from data.corpus import input_files, iter_documents
    from data.prepare import encode_documents
    meta_path, val = os.path.join(path, "meta.json"), os.path.join(path, "val.bin")
    if os.path.isdir(path) and os.path.exists(meta_path):
        try:
            with open(meta_path) as f:
                meta = json.load(f)
            tokenizer, dtype = meta["tokenizer"], meta["dtype"]
            n_bytes = meta["splits"]["val"]["bytes"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{meta_path} is not data/prepare.py's meta.json ({e!r})") from None
        if tokenizer["sha256"] != ckpt_tokenizer["sha256"]:
            raise ValueError(f"{path} was tokenized with {tokenizer.get('name')!r}, the checkpoint "
                             f"with {ckpt_tokenizer['name']!r}: give the raw text file instead")
        size = os.path.getsize(val)
        if dtype not in ("uint16", "uint32") or size % np.dtype(dtype).itemsize:   # as train.py
            raise ValueError(f"{val}: {size} bytes are no whole number of {dtype!r} token ids "
                             "(meta.json field 'dtype'); rewrite the folder with data/prepare.py")
        ids = np.fromfile(val, dtype=dtype).astype(np.int64)
        if len(ids) and ids.max() >= enc.n_vocab:
            raise ValueError(f"{val} holds token id {ids.max()}; the tokenizer has {enc.n_vocab}")
        return ids, n_bytes
    docs = [d for f in input_files(path) for d in iter_documents(f)]
    if not docs:
        raise ValueError(f"no text in {path}")
    ids, _ = encode_documents(enc, docs)         # as prepare.py: each document + <|endoftext|>
    return ids, sum(len(d.encode("utf-8")) for d in docs)


@torch.no_grad()
def measure_bpb(model, enc, ids, n_bytes=None, stride=0, batch_size=16, progress=True):
    """Score every token of `ids` once in strided windows (module docstring). Returns a dict with
    bpb, per-token perplexity, tokens, bytes. n_bytes defaults to the bytes the tokens decode to."""
    from tqdm import tqdm
    from tokenizer_compress import bits_per_byte
    if n_bytes is None:
        n_bytes = text_bytes(enc, ids)
    device = next(model.parameters()).device
    x = torch.tensor(np.concatenate([[enc.eot_token], ids]), dtype=torch.long)  # eot, then ids
    N = len(x) - 1                                     # targets: x[1..N]
    W = min(model.config.block_size, N)                # window length in tokens
    S = stride or max(1, W // 2)                       # window step
    if not 0 < S <= W:
        raise ValueError(f"--stride={stride} must be between 1 and the window ({W} tokens)")
    starts = list(range(0, N - W + 1, S))
    if starts[-1] != N - W:                            # the last window ends on the last token
        starts.append(N - W)
    nll = 0.0                                          # float64 sum of -ln p, in nats
    for i in tqdm(range(0, len(starts), batch_size), desc="bits per byte", disable=not progress):
        group = starts[i:i + batch_size]
        h = hidden_states(model, torch.stack([x[s:s + W] for s in group]).to(device))  # (B, W, C)
        rows, targets = [], []
        # Window s: inputs x[s:s+W] predict x[s+1:s+W+1]. The first window scores all W targets;
        # a later one only its last `new` = s - (previous start) targets, the ones past the
        # previous window's end: so every token is scored exactly once, with the most context.
        for b, s in enumerate(group):
            new = W if i + b == 0 else s - starts[i + b - 1]
            rows.append(h[b, W - new:])                # (new, C)
            targets.append(x[s + W - new + 1:s + W + 1])
        logp, _ = token_logprobs(model, torch.cat(rows), torch.cat(targets).to(device), enc.n_vocab)
        nll -= logp.double().sum().item()
    # bits per byte = total nats / ln 2 / bytes: THE definition, tokenizer_compress.bits_per_byte
    return {"bpb": bits_per_byte(nll / N, N, n_bytes), "ppl_per_token": math.exp(nll / N),
            "nats_per_token": nll / N, "tokens": N, "bytes": n_bytes, "window": W, "stride": S}


# ---- 2. Scoring (context, continuation) pairs, the lm-evaluation-harness way. --------------------
def encode_pair(enc, context, continuation):
    """Token ids (context, continuation) as lm-evaluation-harness makes them (_encode_pair):
    - trailing whitespace of the context moves onto the continuation ("Answer: " + "yes" is scored
      as "Answer:" + " yes"), because BPE tokens carry their leading space;
    - the continuation's tokens are the TAIL of encode(context + continuation) after
      len(encode(context)) tokens, not encode(continuation): what the model sees in written text;
    - an empty context becomes the <|endoftext|> token (the model's "start of a document")."""
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    if not context:
        return [enc.eot_token], enc.encode_ordinary(continuation)
    whole = enc.encode_ordinary(context + continuation)
    ctx = enc.encode_ordinary(context)
    if len(whole) <= len(ctx):
        raise ValueError(f"continuation {continuation!r} adds no token to ...{context[-40:]!r}")
    return ctx, whole[len(ctx):]


@torch.no_grad()
def score_requests(model, enc, requests, batch_size=16, progress=True, desc="scoring"):
    """[(context, continuation)] -> [(sum of log p(continuation tokens), all tokens greedy)].
    A sequence longer than the model's window is left-truncated as the harness does
    ((ctx + cont)[-(block_size+1):][:-1]): the context loses its start, the continuation stays
    whole. The harness refuses a continuation longer than the window itself; we score it in pieces
    of block_size tokens, each piece the end of a truncated sequence (rare: one PIQA solution has
    288 tokens with a 16k tokenizer). Pieces are sorted by length (longest first, so that padding
    is small) and batched; rows are right-padded, which a causal model never looks at."""
    from tqdm import tqdm
    T, device = model.config.block_size, next(model.parameters()).device
    pieces = []                            # (request, input ids, the continuation tokens it scores)
    # A piece ends at `end`: its inputs are the (at most) T tokens before `end`, and it scores the
    # continuation tokens among seq[end - T:end]. One piece covers the whole continuation unless
    # that is longer than T; then the pieces step back T tokens at a time.
    for j, (ctx, cont) in enumerate(requests):
        c, k = encode_pair(enc, ctx, cont)
        seq = c + k
        for end in range(len(seq), len(c), -T):        # one piece unless len(k) > T
            pieces.append((j, seq[max(0, end - 1 - T):end - 1], seq[max(len(c), end - T):end]))
    pieces.sort(key=lambda p: -len(p[1]))             # a batch's first row: its padded length
    logsum, greedy = [0.0] * len(requests), [True] * len(requests)
    for i in tqdm(range(0, len(pieces), batch_size), desc=desc, disable=not progress, leave=False):
        batch = pieces[i:i + batch_size]
        x = torch.zeros(len(batch), len(batch[0][1]), dtype=torch.long)  # (B, longest input)
        b_idx, p_idx, targets = [], [], []
        for b, (_, inp, k) in enumerate(batch):        # the last len(k) inputs predict continuation
            x[b, :len(inp)] = torch.tensor(inp)
            b_idx += [b] * len(k)
            p_idx += range(len(inp) - len(k), len(inp))
            targets += k
        h = hidden_states(model, x.to(device))[b_idx, p_idx]              # (continuation tokens, C)
        logp, top = token_logprobs(model, h, torch.tensor(targets, device=device), enc.n_vocab)
        pos = 0
        for j, _, k in batch:                          # the flat rows back to their requests
            logsum[j] += logp[pos:pos + len(k)].sum().item()
            greedy[j] &= bool(top[pos:pos + len(k)].all())
            pos += len(k)
    return list(zip(logsum, greedy))


# ---- The tasks: the harness's templates (lm_eval/tasks/<task>/*.yaml) on local files -------------
# A record becomes an item {"requests": [(context, continuation) per choice], "gold": i, "lens"};
# "lens" (the choices' lengths in characters, for acc_norm) only where the harness reports acc_norm.
def mc(context, choices, gold, norm=True):
    """A multiple-choice item: every choice is a continuation " " + choice of the same context (the
    harness's target_delimiter " "), so the choices' scores differ only in the choice's tokens."""
    return {"requests": [(context, " " + c) for c in choices], "gold": int(gold),
            "lens": [len(c) for c in choices] if norm else None}


def hellaswag(r):
    """The harness's preprocess removes WikiHow's bracket artifacts ("[title]", "[step]")."""
    def clean(text):
        return re.sub(r"\[.*?\]", "", text.strip().replace(" [title]", ". ")).replace("  ", " ")
    if "query" in r:                                   # processed layout: already cleaned
        return mc(r["query"], r["choices"], r["gold"])
    ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()   # Python's capitalize, as the harness does
    return mc(clean(r["activity_label"] + ": " + ctx), [clean(e) for e in r["endings"]], r["label"])


def arc(r, template="Question: {}\nAnswer:"):
    """ARC; OpenBookQA with template "{}" (the bare stem). Three layouts: processed (query is
    the prompt), Hugging Face (choices {"text", "label"}), AI2's (question {"stem", "choices"})."""
    if "query" in r:
        return mc(r["query"], r["choices"], r["gold"])
    q = r.get("question_stem", r.get("question"))
    if isinstance(q, dict):
        q, choices = q["stem"], {k: [c[k] for c in q["choices"]] for k in ("text", "label")}
    else:
        choices = r["choices"]
    key, labels = r["answerKey"].strip(), choices["label"]
    return mc(template.format(q), choices["text"], labels.index(key) if key in labels else -1)


def winogrande(r):
    """Partial scoring: each option fills the blank in the context; the scored continuation is the
    shared rest of the sentence: the scores compare how well each option predicts the same words."""
    i = r["sentence"].index("_")
    cont = " " + r["sentence"][i + 1:].strip()
    return {"requests": [(r["sentence"][:i] + opt, cont) for opt in (r["option1"], r["option2"])],
            "gold": int(r["answer"]) - 1, "lens": None}


def lambada(r):
    """One request; acc = all its tokens are the greedy ones ("greedy" marks such items)."""
    if "text" in r:                                    # OpenAI release: the target is the last word
        ctx, _, word = r["text"].rpartition(" ")
    else:                                              # processed: {"context", "continuation"}
        ctx, word = r["context"], r["continuation"].lstrip()
    return {"requests": [(ctx, " " + word)], "gold": 0, "lens": None, "greedy": True}


def copa(r):
    """SuperGLUE COPA as lm_eval/tasks/super_glue/copa/utils.py (+ default.yaml): the premise loses
    its last character (the period) and gains " because" (question "cause") or " therefore"; a
    choice is its sentence with the first letter lowercased, and doc_to_choice already puts " " in
    front, so after target_delimiter " " the continuation starts with TWO spaces (harness v0.4
    does exactly this; v0.3 had one). Metric: acc only."""
    connector = {"cause": "because", "effect": "therefore"}[r["question"]]
    lower = [c[0].lower() + c[1:] for c in (r["choice1"], r["choice2"])]
    return {"requests": [(r["premise"].strip()[:-1] + " " + connector, "  " + c) for c in lower],
            "gold": int(r["label"]), "lens": None}


def siqa(r):
    """Social IQa as lm_eval/tasks/siqa/siqa.yaml: "Q: {context} {question}\nA:", choices
    answerA/B/C after " ", the label 1-based ("1".."3", int(label) - 1). Metric: acc only."""
    return mc(f"Q: {r['context']} {r['question']}\nA:", [r["answerA"], r["answerB"], r["answerC"]],
              int(r["label"]) - 1, norm=False)


def boolq(r):                                          # the harness reports acc only
    return mc(f"{r['passage']}\nQuestion: {r['question']}?\nAnswer:", ["no", "yes"],
              r["answer"] if "answer" in r else r["label"], norm=False)


def sciq(r):                                           # the gold answer is the 4th choice
    choices = [r["distractor1"], r["distractor2"], r["distractor3"], r["correct_answer"]]
    return mc(f"{r['support'].lstrip()}\nQuestion: {r['question']}\nAnswer:", choices, 3)


# name: (record -> item, the split the harness scores, gold field, files tried in --data-dir)
TASKS = {
    "hellaswag": (hellaswag, "validation", "label", "hellaswag_val.jsonl"),
    "piqa": (lambda r: mc(f"Question: {r['goal']}\nAnswer:", [r["sol1"], r["sol2"]], r["label"]),
             "validation", "label", "piqa_valid.jsonl valid.jsonl"),
    "arc_easy": (arc, "test", "answerKey", "arc_easy_test.jsonl ARC-Easy-Test.jsonl"),
    "arc_challenge": (arc, "test", "answerKey",
                      "arc_challenge_test.jsonl ARC-Challenge-Test.jsonl"),
    "winogrande": (winogrande, "validation", "answer",
                   "winogrande_dev.jsonl winogrande_1.1/dev.jsonl"),
    "boolq": (boolq, "validation", "answer", "boolq_dev.jsonl boolq/dev.jsonl"),
    "openbookqa": (lambda r: arc(r, "{}"), "test", "answerKey",
                   "openbookqa_test.jsonl openbookqa_test.llmfoundry.jsonl Data/Main/test.jsonl"),
    "sciq": (sciq, "test", "correct_answer", "sciq_test.jsonl test.json sciq_validation.jsonl"),
    "lambada": (lambada, "test", "text", "lambada_openai_test.llmfoundry.jsonl lambada_test.jsonl"),
    "copa": (copa, "validation", "label", "copa_validation.jsonl COPA/val.jsonl"),
    "siqa": (siqa, "validation", "label", "siqa_validation.jsonl socialiqa-train-dev/dev.jsonl"),
    # the exams: folders (load_exam below); C-Eval's test answers are not public: it scores val
    "mmlu": (None, "test", "answer", "mmlu mmlu/data"),
    "ceval": (None, "val", "answer", "ceval ceval-exam"),
    "cmmlu": (None, "test", "answer", "cmmlu cmmlu/data"),
}
# A file under a name of your own (--tasks NAME=PATH): the first layout whose keys its first record
# has decides the template (the task whose records look like that). More specific layouts first.
LAYOUTS = [
    (("query", "choices", "gold"), "arc_easy"),        # processed multiple choice: query = prompt
    (("context", "continuation"), "lambada"),          # processed LAMBADA
    (("premise", "choice1", "choice2", "question"), "copa"),
    (("context", "question", "answerA", "answerB", "answerC"), "siqa"),
    (("ctx_a", "ctx_b", "endings", "activity_label"), "hellaswag"),
    (("goal", "sol1", "sol2"), "piqa"),
    (("sentence", "option1", "option2", "answer"), "winogrande"),
    (("support", "question", "distractor1", "correct_answer"), "sciq"),
    (("passage", "question"), "boolq"),
    (("question_stem", "choices", "answerKey"), "openbookqa"),
    (("question", "answerKey"), "arc_easy"),           # Hugging Face / AI2 release ARC
    (("question", "choices", "answer"), "mmlu"),       # Hugging Face MMLU (cais/mmlu)
    (("Question", "A", "B", "C", "D", "Answer"), "cmmlu"),
    (("question", "A", "B", "C", "D", "answer"), "ceval"),
    (("text",), "lambada"),                            # OpenAI's LAMBADA
]


def detect_layout(name, records, path):
    """The task whose template reads `records`: a known name's own if it reads the first record,
    else the first layout of LAYOUTS whose keys the first record has (load_task says which)."""
    if not records:
        raise ValueError(f"{name}: {path} holds no records")
    build = TASKS.get(name, (None,))[0]
    try:
        if build and build(records[0]):                # an item: a non-empty dict
            return name
    except RECORD_ERRORS:
        pass                                           # not its layout, or a bad record
    keys = set(records[0]) if isinstance(records[0], dict) else set()
    for need, task in LAYOUTS:
        if keys >= set(need):
            return task
    if build:                                          # a known name, a bad record: say which
        return name
    raise ValueError(f"{name}: {path} has records with keys {sorted(keys)}; eval.py reads "
                     + "; ".join(f"{{{', '.join(need)}}} ({task})" for need, task in LAYOUTS))


def read_records(path):
    """JSON objects of a .jsonl file (one per line) or a .json array; plain or gzip (by its magic
    bytes). Plain json: a task file from a stranger can hold data, never code."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        if text.lstrip().startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as e:                            # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} is not JSON lines / a JSON array of records ({e})") from None


def find_task_file(name, data_dir):
    files = TASKS[name][3].split()
    for p in [os.path.join(data_dir, f) + gz for f in files for gz in ("", ".gz")]:
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{name}: expected {os.path.join(data_dir, files[0])} (or .gz, "
                            f"{', '.join(files[1:])}): see --help for where to get it, or pass "
                            f"--data-dir DIR / --tasks {name}=PATH")


def build_items(records, build, where, task, field):
    """[build(record)], every record checked: one that is not the task's layout, or whose answer
    names none of its choices (Python would read gold -1 as the last one), is a one-line error
    naming the file, the record and the field."""
    items = []
    for i, r in enumerate(records, 1):
        try:
            item = build(r)
        except RECORD_ERRORS as e:                     # our own ValueErrors say what is wrong
            why = f": {e}" if type(e) is ValueError else f" is not a {task} record ({e!r})"
            raise ValueError(f"{where} record {i}{why}") from None
        n = len(item["requests"])
        if not 0 <= item["gold"] < n:
            why = f"field {field!r} = {r.get(field)!r} picks none of its {n} choices"
            raise ValueError(f"{where} record {i}: {why if n else 'no choices'}")
        items.append(item)
    return items


def load_task(name, path, limit=None, shots=0):
    """Items of one task file (the first `limit`): a known task's template, or for another name the
    one its layout detects. Malformed records give a one-line error naming file, record, field."""
    if os.path.isdir(path):
        return load_exam(name, path, limit, shots)
    records = read_records(path)
    task = detect_layout(name, records, path)
    if task in EXAMS:                                  # a file of exam records (Hugging Face's)
        return load_exam(name, path, limit, shots)
    records = records[:limit]
    if name in TASKS and task != name:         # e.g. llm-foundry's COPA {query, choices, gold}
        print(f"{name}: {path} is not {name}'s layout but {task}'s: scored with {task}'s template")
    if task in ("piqa", "siqa") and "label" not in records[0]:   # original releases: the labels
        labels = re.sub(r"\.jsonl(\.gz)?$", "-labels.lst", path)  # in a side file, one per line
        if not os.path.exists(labels):
            raise FileNotFoundError(f"{name}: {path} has no labels and {labels} is missing")
        with open(labels) as f:
            records = [{**r, "label": y} for r, y in zip(records, f.read().split())]
    field = "gold" if "query" in records[0] else TASKS[task][2]
    return build_items(records, TASKS[task][0], f"{path}:", task, field)


# ---- The exams of the paper's table: MMLU, C-Eval, CMMLU (../shared/PAPER.md §6) ----------------
# Built as lm-evaluation-harness builds them; strings checked against its files (commit 4e7e0d4):
#   lm_eval/tasks/mmlu/default/_default_template_yaml: doc_to_text "{{question.strip()}}\nA.
#     {{choices[0]}}\nB. ...\nD. {{choices[3]}}\nAnswer:", doc_to_choice ["A", "B", "C", "D"],
#     test_split test, fewshot_split dev, sampler first_n; mmlu/_generate_configs.py: description
#     "The following are multiple choice questions (with answers) about {subject, _ as space}.\n\n".
#   lm_eval/tasks/ceval/_default_ceval_yaml: the same with {{A}}..{{D}} and "\n答案：",
#     validation_split val; ceval/_generate_configs.py: "以下是中国关于{subject_zh}的单项选择题，
#     请选出其中的正确答案。\n\n" (C-Eval's own code, hkust-nlp/ceval, says "...关于{}考试的...";
#     the harness drops 考试, and so do we).
#   lm_eval/tasks/cmmlu/_default_template_yaml: {{Question.strip()}}, "\n答案：", test_split test;
#     cmmlu/_generate_configs.py: "以下是关于{subject_zh}的单项选择题，请直接给出正确答案的选项。\n\n".
#   subject_zh: the SUBJECTS tables of those _generate_configs.py: data/exam_subjects.json.
# Context = description + K dev examples "{prompt} {letter}\n\n" (api/samplers.py FirstNSampler:
# the first K in file order; target_delimiter " ", fewshot_delimiter "\n\n", api/task.py) + the
# question's prompt; continuations " A".." D". acc_norm divides by len("A") = 1: it is acc. The
# harness's group score weighs subjects by size (_mmlu.yaml, _ceval-valid.yaml, _cmmlu.yaml:
# weight_by_size: true), i.e. acc over all questions; papers often give the subjects' mean,
# acc_macro: both are reported.
EXAMS = {  # family: (description, {} = the subject; the answer cue)
    "mmlu": ("The following are multiple choice questions (with answers) about {}.\n\n", "Answer:"),
    "ceval": ("以下是中国关于{}的单项选择题，请选出其中的正确答案。\n\n", "答案："),
    "cmmlu": ("以下是关于{}的单项选择题，请直接给出正确答案的选项。\n\n", "答案："),
}


def exam_csv(path):
    """(family, records) of one subject's CSV, told by its header: C-Eval's starts "id,question",
    CMMLU's ",Question" (a pandas index column); MMLU's has none (question,A,B,C,D,answer)."""
    with open(path, encoding="utf-8-sig", newline="") as f:    # utf-8-sig: drops a byte-order mark
        rows = list(csv.reader(f))
    head = [h.strip().lower() for h in rows[0]] if rows else []    # MMLU: a first question
    family = {("id", "question"): "ceval", ("", "question"): "cmmlu"}.get(tuple(head[:2]), "mmlu")
    if family == "mmlu":
        return family, [dict(zip(["question", "a", "b", "c", "d", "answer"], row)) for row in rows]
    return family, [dict(zip(head, row)) for row in rows[1:]]


def exam_split(path, split):
    """(family, {subject: records}) of one split under `path`, None if absent: the releases' CSVs
    in path/split/ (SUBJECT_split.csv; CMMLU: SUBJECT.csv), a Hugging Face export path/split.jsonl,
    or `path` itself, a JSON file. JSON records: the family by their keys, "subject" if any."""
    folder, subjects, family = os.path.join(path, split), {}, None
    for f in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if f.endswith(".csv"):
            subject = re.sub(f"(_{split})?\\.csv$", "", f)           # abstract_algebra_test.csv
            family, subjects[subject] = exam_csv(os.path.join(folder, f))
    for file in [path] if os.path.isfile(path) else [folder + ".jsonl", folder + ".json"]:
        if not subjects and os.path.isfile(file):
            records = read_records(file)
            family = detect_layout("exam", records, file)
            for r in records:
                subjects.setdefault(r.get("subject", os.path.basename(path)), []).append(r)
    return (family, subjects) if subjects and family in EXAMS else None


def exam_item(r, context, cue):
    """A question as the harness asks it: context (header + shots) + "question\nA. ..\nD. ..\n"
    + cue; the letters are the choices (continuations " A".." D"). A CSV or Hugging Face record."""
    r = {str(k).lower(): v for k, v in r.items()}      # CMMLU capitalises: Question, Answer
    choices = r["choices"] if "choices" in r else [r["a"], r["b"], r["c"], r["d"]]
    answer = r["answer"]                               # a letter (CSV) or 0-3 (Hugging Face)
    letters = {"A": 0, "B": 1, "C": 2, "D": 3}
    gold = answer if type(answer) is int else letters.get(str(answer).strip(), -1)
    if len(choices) != 4 or not 0 <= gold < 4:
        raise ValueError(f"field 'answer' = {answer!r} is not one of A-D (or 0-3) of 4 choices")
    prompt = r["question"].strip() + "".join(f"\n{x}. {c}" for x, c in zip("ABCD", choices))
    return mc(context + prompt + "\n" + cue, "ABCD", gold, norm=False)


def load_exam(name, path, limit=None, shots=0):
    """Items of an exam in a public layout (the first `limit` per subject), each with its subject
    and split. The files tell the family (a name whose files are another family's is scored as
    that one, said in one line); the split is the harness's; --shots: the first dev examples."""
    found = next(filter(None, (exam_split(path, s) for s in ("test", "val", "dev"))), None)
    if not found:
        raise FileNotFoundError(f"{name}: {path} has neither test/ nor val/ nor dev/ of "
                                "per-subject CSVs (MMLU, C-Eval, CMMLU) nor a test.jsonl")
    family, split = found[0], TASKS[found[0]][1]
    if name in EXAMS and family != name:
        print(f"{name}: {path} is in {family}'s layout: scored as {family} (its split, {split}, "
              "and header)")
    subjects = exam_split(path, split)                 # the split the harness scores
    dev = exam_split(path, "dev") if shots and os.path.isdir(path) else None
    if not subjects or (shots and not dev):
        missing, why = (split, "the harness scores for " + family) if not subjects else (
            "dev", "--shots needs")
        raise FileNotFoundError(f"{name}: {path} has no {missing}/ split (per-subject CSVs or "
                                f"{missing}.jsonl), which {why}")
    description, cue = EXAMS[family]
    with open(os.path.join(HERE, "data", "exam_subjects.json"), encoding="utf-8") as f:
        names = json.load(f).get(family, {})           # C-Eval's and CMMLU's Chinese subject names
    items = []
    for subject, records in subjects[1].items():       # in file-name order, as the harness
        where = f"{os.path.join(path, split)}: {subject}"
        examples = (dev[1] if dev else {}).get(subject, [])[:shots]
        if len(examples) < shots:
            raise ValueError(f"{where}: {len(examples)} dev examples, fewer than --shots={shots}")
        context = description.format(names.get(subject, subject.replace("_", " ")))
        shown = build_items(examples, lambda r: exam_item(r, "", cue), where + " dev", family, "")
        context += "".join("".join(it["requests"][it["gold"]]) + "\n\n" for it in shown)  # + " B"
        questions = build_items(records[:limit], lambda r: exam_item(r, context, cue), where,
                                family, "")
        items += [{**it, "subject": subject, "split": split} for it in questions]
    return items


def evaluate_task(model, enc, name, path, limit=None, batch_size=16, progress=True, shots=0):
    """Score one task: acc (and acc_norm) with standard errors, chance level, choices per second;
    for an exam also acc per subject and acc_macro, their mean."""
    items = load_task(name, path, limit, shots)
    requests = [r for it in items for r in it["requests"]]
    t0 = time.perf_counter()
    scores = iter(score_requests(model, enc, requests, batch_size, progress, desc=name))
    split = items[0].get("split") or ("validation" if "validation" in os.path.basename(path)
                                      else TASKS[name][1] if name in TASKS else "?")
    greedy_task = any(it.get("greedy") for it in items)                # LAMBADA-like: acc and ppl
    chance = 0.0 if greedy_task else float(np.mean([1 / len(it["requests"]) for it in items]))
    res = {"file": path, "split": split, "n": len(items), "choices": len(requests),
           "choices_per_s": len(requests) / (time.perf_counter() - t0), "chance": chance}
    hits, hits_norm, lls, subjects = [], [], [], {}
    for it in items:
        ll, greedy = map(np.array, zip(*[next(scores) for _ in it["requests"]]))  # (choices,) each
        hits.append(greedy.all() if it.get("greedy") else np.argmax(ll) == it["gold"])  # ties: 1st
        if it["lens"]:                                 # per character: long choices not penalised
            hits_norm.append(np.argmax(ll / it["lens"]) == it["gold"])
        lls.append(ll[it["gold"]])
        subjects.setdefault(it.get("subject"), []).append(hits[-1])
    for key, h in (("acc", hits), ("acc_norm", hits_norm)):
        if h:                                          # the harness's stderr: sample std / sqrt(n)
            # (h: 0/1 per item, so the std is sqrt(acc (1 - acc) n / (n - 1)); "±" in the table)
            res[key] = float(np.mean(h))
            res[key + "_stderr"] = float(np.std(h, ddof=1) / math.sqrt(len(h)) if len(h) > 1 else 0)
    if greedy_task:
        res["ppl"] = math.exp(-np.mean(lls))           # the harness's: exp(-mean log-likelihood)
    if None not in subjects:                           # an exam: per subject, and their mean
        res["subjects"] = {s: {"n": len(h), "acc": float(np.mean(h))} for s, h in subjects.items()}
        res["acc_macro"] = float(np.mean([s["acc"] for s in res["subjects"].values()]))
        res["shots"] = shots
    return res


def print_table(results):
    print(f"{'task':<14}{'split':<12}{'n':>6}{'acc':>8}{'±':>7}{'acc_norm':>10}{'±':>7}"
          f"{'chance':>8}{'choices/s':>11}")
    for name, r in results.items():
        norm = f"{'-':>10}{'':>7}"                     # no acc_norm: a dash in its column
        if "acc_norm" in r:
            norm = f"{r['acc_norm']:>10.4f}{r['acc_norm_stderr']:>7.4f}"
        extra = f"   ppl {r['ppl']:.4g}" if "ppl" in r else ""
        if "acc_macro" in r:
            extra = (f"   acc_macro {r['acc_macro']:.4f} over {len(r['subjects'])} subjects, "
                     f"{r['shots']}-shot")
        print(f"{name:<14}{r['split']:<12}{r['n']:>6}{r['acc']:>8.4f}{r['acc_stderr']:>7.4f}{norm}"
              f"{r['chance']:>8.3f}{r['choices_per_s']:>11.1f}" + extra)


# ---- 3. Samples. ---------------------------------------------------------------------------------
def sample(model, enc, prompt, max_new_tokens=200, temperature=0.8, top_k=200, seed=1337):
    from tokenizer_compress import decode_sample
    device = next(model.parameters()).device
    ids = enc.encode_ordinary(prompt) or [enc.eot_token]    # no prompt: start of a document
    n = min(max_new_tokens, model.config.block_size - len(ids))
    if n <= 0:
        raise ValueError(f"the prompt has {len(ids)} tokens: no room left in the model's context "
                         f"of {model.config.block_size}; shorten it")
    out = model.generate(torch.tensor([ids], device=device), n, temperature=temperature,
                         top_k=top_k or None, n_vocab=enc.n_vocab,
                         generator=torch.Generator(device).manual_seed(seed))
    return decode_sample(enc, out[0, len(ids):].tolist())


# ---- Command line: options, the results file, the run. -------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                epilog="see the top of eval.py",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--ckpt", help="checkpoint written by train.py (needed unless --plot)")
    add("--trust_checkpoint", action="store_true",
        help="load --ckpt by a full unpickle, which can run code: only an old checkpoint you trust")
    add("--bpb", metavar="DATA", help="held-out text (.txt/.jsonl, gzipped or not; file or folder) "
        "or a prepare.py shard folder")
    add("--stride", type=int, default=0, help="bpb: window step in tokens; 0 = half the context")
    add("--tasks", help=f"comma-separated: {','.join(TASKS)}, or all (the files present); "
        "NAME=PATH for a file or exam folder (any NAME: its layout is detected)")
    add("--data-dir", default=DEFAULT_DATA_DIR, help="folder of the benchmark files")
    add("--shots", type=int, default=0, help="exams (mmlu, ceval, cmmlu): examples from dev/")
    add("--limit", type=int, help="the first N items per task (per exam subject); tokens of --bpb")
    add("--batch-size", type=int, default=16, help="sequences per forward pass")
    add("--out", help="results file, one JSON line appended per run (None: <ckpt without .pt>"
        "_eval.jsonl); with --plot the picture (None: curves_compared.png)")
    add("--sample", metavar="PROMPT", help='generate a continuation ("" = a new document)')
    add("--max-new-tokens", type=int, default=200, help="sample length (capped by the context)")
    add("--temperature", type=float, default=0.8, help="sampling temperature; 0 = greedy")
    add("--top-k", type=int, default=200, help="sample from the k most likely tokens; 0 = all")
    add("--seed", type=int, default=1337, help="sampling seed")
    add("--device", default="auto", help="auto (cuda if available, else cpu) | cpu | cuda | cuda:N")
    add("--threads", type=int, help="CPU threads (None: PyTorch's, all cores; 1 is often faster "
        "for tiny models on a busy machine)")
    add("--plot", metavar="RUN_DIRS", help="comma-separated folders train.py wrote: their "
        "log.jsonl curves in one picture (--out); needs matplotlib")
    args = p.parse_args(argv)
    if not args.plot and not (args.ckpt and (args.bpb or args.tasks or args.sample is not None)):
        p.error("nothing to do: give --ckpt CKPT with --bpb DATA, --tasks LIST and/or --sample "
                "PROMPT; or --plot")
    try:
        plot(args) if args.plot else run(args)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"eval.py: error: {e}")
    except KeyboardInterrupt:                          # finished steps' results are in --out
        sys.exit("eval.py: interrupted; the results finished before it are in the results file "
                 "(--out)")


def check_options(args):
    """Every number checked before any work, with the option's own name in the message."""
    for bad, option, rule in [
            (not 0 <= args.temperature < math.inf, "temperature", "must be 0 (greedy) or positive"),
            (args.top_k < 0, "top_k", "must be 0 (all tokens) or positive"),
            (args.threads is not None and args.threads < 1, "threads", "must be at least 1"),
            (args.max_new_tokens < 1, "max_new_tokens", "must be at least 1"),
            (args.batch_size < 1, "batch_size", "must be at least 1"),
            (args.limit is not None and args.limit < 1, "limit", "must be at least 1"),
            (args.stride < 0, "stride", "must be 0 (half the context) or positive"),
            (args.shots < 0, "shots", "must be 0 (zero-shot) or positive")]:
        if bad:
            raise ValueError(f"--{option.replace('_', '-')} {rule} (got {getattr(args, option)})")


def check_out(out, inputs, results=True):
    """--out may not be a folder, lie in a missing one, or be one of the run's inputs. With
    results=True, an existing --out must be a results file (a JSON object per earlier run): its
    text is returned, kept byte for byte, and this run appends; any other file is never touched."""
    folder = os.path.dirname(os.path.abspath(out))     # checked before the hours of work
    if os.path.isdir(out) or not os.path.isdir(folder):
        raise ValueError(f"--out {out} is a folder; name a file in it" if os.path.isdir(out)
                         else f"--out {out}: its folder {folder} does not exist")
    for name, path in inputs:                          # e.g. --out pointing at the checkpoint
        if path and os.path.exists(path) and os.path.exists(out) and os.path.samefile(path, out):
            raise ValueError(f"--out {out} is the {name} this run reads; writing would destroy it")
    if not results or not os.path.exists(out):
        return ""
    try:
        with open(out, encoding="utf-8") as f:
            text = f.read()
        if all(isinstance(json.loads(line), dict) for line in text.splitlines() if line.strip()):
            return text if text.endswith("\n") or not text else text + "\n"
    except ValueError:                                 # UnicodeDecodeError, JSONDecodeError
        pass
    raise ValueError(f"--out {out} exists and is not an eval.py results file; choose another --out")


def resolve_tasks(spec, data_dir, shots=0):
    """--tasks "hellaswag,piqa=PATH,mine=PATH" or "all" (the tasks whose files are present) ->
    {name: path}. Each file's layout (an exam folder: each split it needs) is checked before the
    model loads."""
    tasks = {}
    for item in spec.split(","):
        name, _, path = item.strip().partition("=")
        path = os.path.expanduser(path)
        if name == "all":
            for t in TASKS:
                try:
                    tasks[t] = find_task_file(t, data_dir)
                except FileNotFoundError:
                    pass                               # all = the tasks whose files are present
            if not tasks:
                raise FileNotFoundError(f"no benchmark files in {data_dir}; see --help for where "
                                        "to get them")
        elif name not in TASKS and not path:
            raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)} or all, or "
                             f"give a file: {name}=PATH")
        elif path and not os.path.exists(path):
            raise FileNotFoundError(f"{name}: {path} does not exist")
        else:
            tasks[name] = path or find_task_file(name, data_dir)
            if os.path.isdir(tasks[name]):
                load_exam(name, tasks[name], 1, shots)  # 1 per subject: reads every split
            elif path:
                detect_layout(name, read_records(path)[:1], path)
    return tasks


def run(args):
    """Every input is checked first (options, task files, --out), then the model loads; the results
    file is rewritten after each step, so a crash late in a long run keeps what was measured."""
    check_options(args)
    tasks = resolve_tasks(args.tasks, args.data_dir, args.shots) if args.tasks else {}  # inputs
    out = args.out or os.path.splitext(args.ckpt)[0] + "_eval.jsonl"
    inputs = [("checkpoint --ckpt", args.ckpt), ("--bpb data", args.bpb)] + list(tasks.items())
    before = check_out(out, inputs, results=bool(args.bpb or tasks))    # earlier runs' results
    from model import resolve_device                   # one-line errors for devices this machine lacks
    device = resolve_device(args.device)
    if args.threads:                                   # before any tensor work
        torch.set_num_threads(args.threads)
    model, enc, ckpt = load(args.ckpt, device, trust=args.trust_checkpoint)   # weights_only
    c, tok = model.config, ckpt["tokenizer"]
    print(f"{args.ckpt}: step {ckpt.get('step', '?')}, {model.param_count()['total'] / 1e6:.2f}M "
          f"parameters, context {c.block_size}, tokenizer {tok['name']} ({enc.n_vocab} ids, "
          f"{c.vocab_size} head rows)")
    report = {"ckpt": os.path.abspath(args.ckpt), "step": ckpt.get("step"), "tokenizer": tok,
              "model_config": ckpt["model_config"], "limit": args.limit,
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}

    def save():                                 # after every step: a late failure keeps the rest;
        with open(out + ".tmp", "w", encoding="utf-8") as f:   # temp + rename: never half a file
            f.write(before + json.dumps(report, ensure_ascii=False) + "\n")
        os.replace(out + ".tmp", out)
    if args.bpb:
        ids, n_bytes = load_bpb_data(args.bpb, enc, tok)
        if args.limit:                                 # a prefix: the bytes those tokens cover
            ids, n_bytes = ids[:args.limit], None
        elif text_bytes(enc, ids) != n_bytes:          # lossless BPE: the tokens ARE the text
            raise ValueError(f"{args.bpb}: the tokens decode to {text_bytes(enc, ids)} bytes, the "
                             f"text has {n_bytes}")
        r = measure_bpb(model, enc, ids, n_bytes, args.stride, args.batch_size)
        report["bpb"] = {"data": args.bpb, **r}
        save()
        print(f"{args.bpb}: {r['bpb']:.4f} bits per byte, perplexity {r['ppl_per_token']:.2f} per "
              f"token ({r['tokens']:,} tokens, {r['bytes']:,} bytes, window {r['window']}, stride "
              f"{r['stride']})")
    if tasks:
        report["tasks"] = {}
        for name, path in tasks.items():
            result = evaluate_task(model, enc, name, path, args.limit, args.batch_size,
                                   shots=args.shots)
            report["tasks"][name] = result
            save()
            if name == "sciq" and result["split"] == "validation":
                print("note: sciq is scored on validation; the harness (and papers) use test")
        print_table(report["tasks"])
    if args.sample is not None:
        text = sample(model, enc, args.sample, args.max_new_tokens, args.temperature, args.top_k,
                      args.seed)
        report["sample"] = {"prompt": args.sample, "text": text, "temperature": args.temperature,
                            "top_k": args.top_k, "seed": args.seed}
        print("-" * 80 + "\n" + args.sample + text + "\n" + "-" * 80)
    if args.bpb or tasks:
        save()
        print(f"wrote {out} (this run appended to {len(before.splitlines())} earlier)")


def plot(args):
    """--plot RUN_DIRS: the runs' log.jsonl curves in one picture, drawn by curves.py."""
    import importlib.util
    runs = [d for d in args.plot.split(",") if d]      # "a,b," -> ["a", "b"]
    for d in runs:
        if not os.path.isfile(os.path.join(d, "log.jsonl")):
            raise FileNotFoundError(f"--plot: {d} has no log.jsonl; name folders that train.py "
                                    "wrote")
    out = args.out or "curves_compared.png"
    check_out(out, [("log", os.path.join(d, "log.jsonl")) for d in runs], results=False)
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib: pip install matplotlib")
    import curves
    curves.draw(runs, out)
    print(f"wrote {out}: {len(runs)} run(s)")


if __name__ == "__main__":
    main()
