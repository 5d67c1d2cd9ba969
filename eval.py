"""
eval.py — measure a nanopangu checkpoint: bits per byte, zero-shot benchmarks, samples.

    python eval.py --ckpt out/ckpt.pt --bpb ../shared/data/corpora/gutenberg_children_val.txt.gz
    python eval.py --ckpt out/ckpt.pt --bpb data/shakespeare           # a prepare.py shard folder: its val.bin
    python eval.py --ckpt out/ckpt.pt --tasks all --limit 200          # every task file present, 200 items each
    python eval.py --ckpt out/ckpt.pt --tasks hellaswag,piqa --data-dir ~/benchmarks
    python eval.py --ckpt out/ckpt.pt --tasks arc_easy=~/ARC-V1-Feb2018/ARC-Easy/ARC-Easy-Test.jsonl
    python eval.py --ckpt out/ckpt.pt --tasks mytask=my_items.jsonl    # any name: the layout is read from the keys
    python eval.py --ckpt out/ckpt.pt --sample "Once upon a time" --temperature 0.8 --top-k 200 --seed 1

1. Bits per byte (--bpb). A loss per token cannot compare tokenizers: a compressed vocabulary (the paper's
   compact tokenizer) cuts text into more, easier tokens. Dividing the total surprise by the UTF-8 bytes
   of the raw text takes the tokenizer out of the unit: bpb = sum(-log2 p(token)) / bytes. Documents are
   read as data/prepare.py reads them, each followed by <|endoftext|> (scored, no bytes: as train.py's
   val bpb), and one <|endoftext|> starts the stream so that the first token is predicted too.
   Windows: the model sees block_size tokens at most. A window of block_size tokens slides by --stride
   (default block_size/2); the first window scores all its tokens, each later one only the last `stride`
   (those no window scored before): every token is scored exactly once, with at least block_size - stride
   tokens of context after the first window. Perplexity is PER TOKEN of the checkpoint's tokenizer,
   exp(mean nats per token): comparable only between models that share a tokenizer; bpb always is.
2. Zero-shot benchmarks (--tasks), scored as EleutherAI's lm-evaluation-harness does, so that numbers sit
   next to published tables: a choice is a (context, continuation) pair with continuation = " " + choice,
   scored by the summed fp32 log-probability of the continuation's tokens. acc: the best-scored choice is
   the gold one; acc_norm: the same after dividing each score by the choice's length in characters
   (the choice as the harness's doc_to_choice gives it: without the " " delimiter).
   Templates and splits are the harness's (TASKS below); LAMBADA scores its last word: acc = every token
   of " word" is the model's greedy choice, ppl = exp(-mean log-likelihood of the word).
   One deliberate difference: the head has padding rows (vocab_size is rounded up to a multiple of 64)
   that are no token, and eval.py masks them before the softmax; the harness, run on an exported model
   (export.py), would spread a little probability over them. Raw log-likelihoods therefore differ from
   the harness's by log(1 + the padding rows' share) per token, up to ~0.01 nats with a 16k or larger
   vocabulary (63 rows beside 16,001 ids: ~0.004 at initialisation, less once trained; tiny test
   vocabularies have a larger share); accuracies do not, but for near-ties (the shift is small and about
   the same per token for every choice).
3. Samples (--sample PROMPT) with the KV cache of model.generate.

Where to get the files: ../shared/data/README.md describes the copies there. Or point --data-dir at a
folder of your own, or name a file: --tasks piqa=PATH. Plain or gzipped; names tried in this order:
    hellaswag      hellaswag_val.jsonl                   github.com/rowanz/hellaswag, data/
    piqa           piqa_valid.jsonl, valid.jsonl  (+ -labels.lst)   yonatanbisk.com/piqa (ybisk.github.io)
    arc_easy       arc_easy_test.jsonl, ARC-Easy-Test.jsonl      allenai.org/data/arc: ARC-V1-Feb2018.zip
    arc_challenge  arc_challenge_test.jsonl, ARC-Challenge-Test.jsonl   the same zip
    winogrande     winogrande_dev.jsonl, winogrande_1.1/dev.jsonl   github.com/allenai/winogrande
    boolq          boolq_dev.jsonl, boolq/dev.jsonl      github.com/google-research-datasets/boolean-questions
    openbookqa     openbookqa_test(.llmfoundry).jsonl, Data/Main/test.jsonl   allenai.org: OpenBookQA-V1-Sep2018.zip
    sciq           sciq_test.jsonl, test.json, else sciq_validation.jsonl     allenai.org/data/sciq: SciQ.zip
    lambada        lambada_openai_test.llmfoundry.jsonl, lambada_test.jsonl   OpenAI's LAMBADA release ({"text"})
    copa           copa_validation.jsonl, COPA/val.jsonl   SuperGLUE (super.gluebenchmark.com) COPA.zip
    siqa           siqa_validation.jsonl, socialiqa-train-dev/dev.jsonl (+ dev-labels.lst)   allenai.org/data/socialiqa
Also read: the processed {"query","choices","gold"} / {"context","continuation"} files of ../shared/data
and Hugging Face layouts ({"question","choices":{"text","label"},"answerKey"}, BoolQ "label", Social IQa
"label" "1"-"3"). A file under a name of your own (--tasks NAME=PATH) is read with the first layout of
LAYOUTS whose keys its first record has, and scored with that task's template.
"""
import argparse
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


# ---- Checkpoint, tokenizer, log-probabilities. ---------------------------------------------------
def load(ckpt_path, device="cpu"):
    """(model in eval mode, the checkpoint's own tiktoken Encoding, checkpoint dict)."""
    from model import load_model
    from tokenizer_compress import load_tokenizer, tokenizer_identity
    model, ckpt = load_model(ckpt_path, device)
    tok = ckpt.get("tokenizer") or {}
    if "source" not in tok:
        raise ValueError(f"{ckpt_path} records no tokenizer; it was not written by train.py")
    enc = load_tokenizer(tok["source"])
    if tokenizer_identity(enc)["sha256"] != tok["sha256"]:    # e.g. the tokenizer file was rewritten since
        raise ValueError(f"tokenizer {tok['source']} is not the one {ckpt_path} was trained with (sha256 differs)")
    if enc.n_vocab > model.config.vocab_size:
        raise ValueError(f"tokenizer has {enc.n_vocab} ids but the model only {model.config.vocab_size} rows")
    return model, enc, ckpt


def hidden_states(model, idx):
    """The final (normed) hidden states (B, T, C) of token ids idx (B, T), in fp32.
    Why not just the logits: the LM head is V x C, and with a 100k vocabulary it costs far more than the
    whole body of a tiny model — but we need log-probs only at a few positions (a choice's continuation).
    So we run the model's trunk and apply the head ourselves where needed (token_logprobs).
    tests/test_eval.py checks this against the plain full-logits forward."""
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if idx.is_cuda else nullcontext()
    with amp:
        return model.trunk(idx).float()


def token_logprobs(model, h, targets, n_vocab, chunk=512):
    """log p(target) in fp32, and whether target is the greedy (highest-logit) token, for hidden rows h (N, C).
    Padding rows: the model may have more output rows than the tokenizer has ids (vocab_size is padded to
    a multiple of 64); those ids are never valid tokens, so their logits are set to -inf before the
    softmax, which then runs over the n_vocab real ids only ("uniform" means 1/n_vocab each)."""
    logp, greedy = [], []
    for i in range(0, len(h), chunk):                  # chunks bound the (rows x V) logits in memory
        logits = model.lm_head(h[i:i + chunk].float()).float()
        logits[:, n_vocab:] = float("-inf")
        t = targets[i:i + chunk, None]
        logp.append(torch.log_softmax(logits, dim=1).gather(1, t)[:, 0])   # (faster than logsumexp on CPU)
        greedy.append(logits.gather(1, t)[:, 0] >= logits.amax(dim=1))
    return torch.cat(logp), torch.cat(greedy)


# ---- 1. Bits per byte of held-out text. ----------------------------------------------------------
def text_bytes(enc, ids):
    """UTF-8 bytes of the text that token ids encode: byte-level BPE is lossless, so this is exactly the
    raw text's byte count; special tokens (<|endoftext|>) are separators and carry no bytes."""
    specials = np.fromiter(enc._special_tokens.values(), dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    return len(enc.decode_bytes(ids[~np.isin(ids, specials)].tolist()))


def load_bpb_data(path, enc, ckpt_tokenizer):
    """(token ids, UTF-8 byte count of the raw text) of held-out data: a shard folder written by
    data/prepare.py (its val.bin; the tokenizer must be the checkpoint's) or text files it reads."""
    from data.corpus import input_files, iter_documents
    from data.prepare import encode_documents
    meta_path = os.path.join(path, "meta.json")
    if os.path.isdir(path) and os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta["tokenizer"]["sha256"] != ckpt_tokenizer["sha256"]:
            raise ValueError(f"{path} was tokenized with {meta['tokenizer']['name']!r}, the checkpoint with "
                             f"{ckpt_tokenizer['name']!r}; re-run data/prepare.py --tokenizer={ckpt_tokenizer['source']} "
                             f"or give the raw text file instead")
        ids = np.fromfile(os.path.join(path, "val.bin"), dtype=meta["dtype"]).astype(np.int64)
        return ids, meta["splits"]["val"]["bytes"]
    docs = [d for f in input_files(path) for d in iter_documents(f)]
    if not docs:
        raise ValueError(f"no text in {path}")
    ids, _ = encode_documents(enc, docs)               # prepare.py's layout: each document + <|endoftext|>
    return ids, sum(len(d.encode("utf-8")) for d in docs)


@torch.no_grad()
def bits_per_byte(model, enc, ids, n_bytes=None, stride=0, batch_size=16, progress=True):
    """Score every token of `ids` once in strided windows (module docstring). Returns a dict with bpb,
    per-token perplexity, tokens, bytes. n_bytes defaults to the bytes the tokens decode to."""
    from tqdm import tqdm
    if n_bytes is None:
        n_bytes = text_bytes(enc, ids)
    device = next(model.parameters()).device
    x = torch.tensor(np.concatenate([[enc.eot_token], ids]), dtype=torch.long)  # <|endoftext|> predicts token 1
    N = len(x) - 1                                     # targets: x[1..N]
    W = min(model.config.block_size, N)
    S = stride or max(1, W // 2)
    if not 0 < S <= W:
        raise ValueError(f"--stride={stride} must be between 1 and the window ({W} tokens)")
    starts = list(range(0, N - W + 1, S))
    if starts[-1] != N - W:                            # one last full window ending on the last token
        starts.append(N - W)
    nll = 0.0                                          # float64 sum of -ln p, in nats
    for i in tqdm(range(0, len(starts), batch_size), desc="bits per byte", unit="batch", disable=not progress):
        group = starts[i:i + batch_size]
        h = hidden_states(model, torch.stack([x[s:s + W] for s in group]).to(device))
        rows, targets = [], []
        for b, s in enumerate(group):                  # window s: inputs x[s:s+W] predict x[s+1:s+W+1]
            new = W if i + b == 0 else s - starts[i + b - 1]     # targets no earlier window scored
            rows.append(h[b, W - new:])
            targets.append(x[s + W - new + 1:s + W + 1])
        logp, _ = token_logprobs(model, torch.cat(rows), torch.cat(targets).to(device), enc.n_vocab)
        nll -= logp.double().sum().item()
    return {"bpb": nll / math.log(2) / n_bytes, "ppl_per_token": math.exp(nll / N), "nats_per_token": nll / N,
            "tokens": N, "bytes": n_bytes, "window": W, "stride": S}


# ---- 2. Zero-shot scoring of (context, continuation) pairs, the lm-evaluation-harness way. -------
def encode_pair(enc, context, continuation):
    """Token ids (context, continuation) exactly as lm-evaluation-harness makes them (TemplateLM._encode_pair):
    - trailing whitespace of the context moves onto the continuation ("Answer: " + "yes" is scored as
      "Answer:" + " yes"), because BPE tokens carry their leading space;
    - the continuation's tokens are the TAIL of encode(context + continuation) after len(encode(context))
      tokens, not encode(continuation): what the model would really see if the text were written out;
    - an empty context becomes the <|endoftext|> token (the model's "start of a document")."""
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    if not context:
        return [enc.eot_token], enc.encode_ordinary(continuation)
    whole = enc.encode_ordinary(context + continuation)
    ctx = enc.encode_ordinary(context)
    if len(whole) <= len(ctx):
        raise ValueError(f"continuation {continuation!r} adds no token to context ...{context[-40:]!r}")
    return ctx, whole[len(ctx):]


@torch.no_grad()
def score_requests(model, enc, requests, batch_size=16, progress=True, desc="scoring"):
    """[(context, continuation)] -> [(sum of log p(continuation tokens), all tokens greedy)].
    A sequence longer than the model's window is left-truncated as the harness does
    ((ctx + cont)[-(block_size+1):][:-1]): the context loses its start, the continuation stays whole.
    The harness refuses a continuation longer than the window itself; we score it in pieces of
    block_size tokens, each piece the end of a truncated sequence (rare: one PIQA solution has 288
    tokens with a 16k tokenizer). Pieces are sorted by length (longest first, so that padding is small)
    and batched; rows are right-padded, which a causal model never looks at."""
    from tqdm import tqdm
    T, device = model.config.block_size, next(model.parameters()).device
    pieces = []                                        # (request, input ids, continuation tokens it scores)
    for j, (ctx, cont) in enumerate(requests):
        c, k = encode_pair(enc, ctx, cont)
        seq = c + k
        for end in range(len(seq), len(c), -T):        # one piece unless len(k) > T
            pieces.append((j, seq[max(0, end - 1 - T):end - 1], seq[max(len(c), end - T):end]))
    pieces.sort(key=lambda p: -len(p[1]))
    logsum, greedy = [0.0] * len(requests), [True] * len(requests)
    for i in tqdm(range(0, len(pieces), batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
        batch = pieces[i:i + batch_size]
        x = torch.zeros(len(batch), len(batch[0][1]), dtype=torch.long)   # longest first: the padded length
        b_idx, p_idx, targets = [], [], []
        for b, (_, inp, k) in enumerate(batch):        # the last len(k) inputs predict the continuation
            x[b, :len(inp)] = torch.tensor(inp)
            b_idx += [b] * len(k)
            p_idx += range(len(inp) - len(k), len(inp))
            targets += k
        h = hidden_states(model, x.to(device))
        logp, top = token_logprobs(model, h[b_idx, p_idx], torch.tensor(targets, device=device), enc.n_vocab)
        pos = 0
        for j, _, k in batch:                          # the flat rows back to their requests
            logsum[j] += logp[pos:pos + len(k)].sum().item()
            greedy[j] &= bool(top[pos:pos + len(k)].all())
            pos += len(k)
    return list(zip(logsum, greedy))


# ---- The tasks: the harness's templates (lm_eval/tasks/<task>/*.yaml) on local files ----------------
# A record becomes an item {"requests": [(context, continuation) per choice], "gold": i, "lens": [...]};
# "lens" (the choices' lengths in characters, for acc_norm) only where the harness reports acc_norm.
def mc(context, choices, gold, norm=True):
    return {"requests": [(context, " " + c) for c in choices], "gold": int(gold),
            "lens": [len(c) for c in choices] if norm else None}


def hellaswag_clean(text):
    """The harness's HellaSwag preprocess: WikiHow bracket artifacts ("[title]", "[step]") removed."""
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


def hellaswag(r):
    if "query" in r:                                   # processed layout: already cleaned
        return mc(r["query"], r["choices"], r["gold"])
    ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()   # Python's capitalize, as the harness (lowercases the rest)
    return mc(hellaswag_clean(r["activity_label"] + ": " + ctx), [hellaswag_clean(e) for e in r["endings"]], r["label"])


def arc(r, template="Question: {}\nAnswer:"):
    """ARC; OpenBookQA with template "{}" (the bare question stem). Three layouts: processed (query is
    already the prompt), Hugging Face (choices = {"text", "label"}), AI2 release (question = {"stem", "choices"})."""
    if "query" in r:
        return mc(r["query"], r["choices"], r["gold"])
    q = r.get("question_stem", r.get("question"))
    if isinstance(q, dict):
        q, texts, labels = q["stem"], [c["text"] for c in q["choices"]], [c["label"] for c in q["choices"]]
    else:
        texts, labels = r["choices"]["text"], r["choices"]["label"]
    return mc(template.format(q), texts, labels.index(r["answerKey"].strip()))


def winogrande(r):
    """Partial scoring: each option fills the blank in the context; the scored continuation is the shared
    rest of the sentence, so the two scores compare how well each option predicts the same words."""
    i = r["sentence"].index("_")
    cont = " " + r["sentence"][i + 1:].strip()
    return {"requests": [(r["sentence"][:i] + opt, cont) for opt in (r["option1"], r["option2"])],
            "gold": int(r["answer"]) - 1, "lens": None}


def lambada(r):
    """One request; acc = all its tokens are the greedy ones ("greedy" marks such items)."""
    if "text" in r:                                    # OpenAI release: the passage; the target is its last word
        ctx, _, word = r["text"].rpartition(" ")
    else:                                              # processed: {"context", "continuation"}
        ctx, word = r["context"], r["continuation"].lstrip()
    return {"requests": [(ctx, " " + word)], "gold": 0, "lens": None, "greedy": True}


def copa(r):
    """SuperGLUE COPA as lm_eval/tasks/super_glue/copa/utils.py (+ default.yaml) has it: the premise loses
    its final character (the period) and gains the connector, " because" (question "cause") or " therefore"
    ("effect"); a choice is its sentence with the first letter lowercased, and doc_to_choice already puts
    " " in front, so with the default target_delimiter " " the continuation starts with TWO spaces (the
    harness v0.4 does exactly this; v0.3's superglue.py had one). Metric: acc only."""
    connector = {"cause": "because", "effect": "therefore"}[r["question"]]
    lower = [c[0].lower() + c[1:] for c in (r["choice1"], r["choice2"])]
    return {"requests": [(r["premise"].strip()[:-1] + " " + connector, "  " + c) for c in lower],
            "gold": int(r["label"]), "lens": None}


def siqa(r):
    """Social IQa as lm_eval/tasks/siqa/siqa.yaml: "Q: {context} {question}\nA:", choices answerA/B/C
    after " ", the label 1-based ("1".."3", int(label) - 1). Metric: acc only."""
    return mc(f"Q: {r['context']} {r['question']}\nA:", [r["answerA"], r["answerB"], r["answerC"]],
              int(r["label"]) - 1, norm=False)


# name: (record -> item, files tried in --data-dir in this order, the split the harness scores)
TASKS = {
    "hellaswag": (hellaswag, ["hellaswag_val.jsonl"], "validation"),
    "piqa": (lambda r: mc(f"Question: {r['goal']}\nAnswer:", [r["sol1"], r["sol2"]], r["label"]),
             ["piqa_valid.jsonl", "valid.jsonl"], "validation"),
    "arc_easy": (arc, ["arc_easy_test.jsonl", "ARC-Easy-Test.jsonl"], "test"),
    "arc_challenge": (arc, ["arc_challenge_test.jsonl", "ARC-Challenge-Test.jsonl"], "test"),
    "winogrande": (winogrande, ["winogrande_dev.jsonl", "winogrande_1.1/dev.jsonl"], "validation"),
    "boolq": (lambda r: mc(f"{r['passage']}\nQuestion: {r['question']}?\nAnswer:", ["no", "yes"],
                           r["answer"] if "answer" in r else r["label"], norm=False),       # harness: acc only
              ["boolq_dev.jsonl", "boolq/dev.jsonl"], "validation"),
    "openbookqa": (lambda r: arc(r, "{}"), ["openbookqa_test.jsonl", "openbookqa_test.llmfoundry.jsonl",
                                             "Data/Main/test.jsonl"], "test"),
    "sciq": (lambda r: mc(f"{r['support'].lstrip()}\nQuestion: {r['question']}\nAnswer:",   # gold: the 4th
                          [r["distractor1"], r["distractor2"], r["distractor3"], r["correct_answer"]], 3),
             ["sciq_test.jsonl", "test.json", "sciq_validation.jsonl"], "test"),
    "lambada": (lambada, ["lambada_openai_test.llmfoundry.jsonl", "lambada_test.jsonl"], "test"),
    "copa": (copa, ["copa_validation.jsonl", "COPA/val.jsonl"], "validation"),
    "siqa": (siqa, ["siqa_validation.jsonl", "socialiqa-train-dev/dev.jsonl"], "validation"),
}
# A file under a name of your own (--tasks NAME=PATH): the first layout whose keys its first record has
# decides the template (the task whose records look like that). More specific layouts come first.
LAYOUTS = [
    (("query", "choices", "gold"), "arc_easy"),        # processed multiple choice: the query is the prompt
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
    (("text",), "lambada"),                            # OpenAI's LAMBADA
]


def detect_layout(name, records, path):
    """The task whose template reads `records` (a known name is its own task)."""
    if name in TASKS:
        return name
    if not records:
        raise ValueError(f"{name}: {path} holds no records")
    keys = set(records[0]) if isinstance(records[0], dict) else set()
    for need, task in LAYOUTS:
        if keys >= set(need):
            return task
    raise ValueError(f"{name}: {path} has records with keys {sorted(keys)}, no layout eval.py reads: "
                     + "; ".join(f"{{{', '.join(need)}}} ({task})" for need, task in LAYOUTS))


def read_records(path):
    """JSON objects of a .jsonl file (one per line) or a .json array; plain or gzip (by its magic bytes)."""
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
    for f in TASKS[name][1]:
        for p in (os.path.join(data_dir, f), os.path.join(data_dir, f) + ".gz"):
            if os.path.exists(p):
                return p
    raise FileNotFoundError(f"{name}: expected {os.path.join(data_dir, TASKS[name][1][0])} (or .gz"
                            + "".join(f", {f}" for f in TASKS[name][1][1:]) + ") — see `python eval.py --help` "
                            f"for where to get it, or pass --data-dir DIR / --tasks {name}=PATH")


def load_task(name, path, limit=None):
    """Items of one task file (the first `limit`): a known task's template, or for another name the one
    its layout detects. Malformed records give a one-line error with their line."""
    records = read_records(path)[:limit]
    task = detect_layout(name, records, path)
    if task in ("piqa", "siqa") and records and "label" not in records[0]:   # original releases: labels
        lbl = re.sub(r"\.jsonl(\.gz)?$", "-labels.lst", path)                 # in a side file, one per line
        if not os.path.exists(lbl):
            raise FileNotFoundError(f"{name}: {path} has no labels and {lbl} is missing")
        with open(lbl) as f:
            labels = f.read().split()
        records = [{**r, "label": y} for r, y in zip(records, labels)]
    items = []
    for i, r in enumerate(records, 1):
        try:
            items.append(TASKS[task][0](r))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise ValueError(f"{path}: record {i} is not a {task} record ({type(e).__name__}: {e})") from None
    return items


def evaluate_task(model, enc, name, path, limit=None, batch_size=16, progress=True):
    """Score one task file: acc (and acc_norm) with standard errors, chance level, choices per second."""
    items = load_task(name, path, limit)
    requests = [r for it in items for r in it["requests"]]
    t0 = time.perf_counter()
    scores = iter(score_requests(model, enc, requests, batch_size, progress, desc=name))
    split = "validation" if "validation" in os.path.basename(path) else TASKS[name][2] if name in TASKS else "?"
    greedy_task = any(it.get("greedy") for it in items)                  # LAMBADA-like: acc and ppl
    res = {"file": path, "split": split, "n": len(items), "choices": len(requests),
           "choices_per_s": len(requests) / (time.perf_counter() - t0),
           "chance": 0.0 if greedy_task else float(np.mean([1 / len(it["requests"]) for it in items]))}
    hits, hits_norm, lls = [], [], []
    for it in items:
        ll, greedy = map(np.array, zip(*[next(scores) for _ in it["requests"]]))
        hits.append(greedy.all() if it.get("greedy") else np.argmax(ll) == it["gold"])  # argmax: first on ties
        if it["lens"]:
            hits_norm.append(np.argmax(ll / it["lens"]) == it["gold"])
        lls.append(ll[it["gold"]])
    for key, h in (("acc", hits), ("acc_norm", hits_norm)):
        if h:   # the harness's standard error of a mean: sample std / sqrt(n)
            res[key], res[key + "_stderr"] = float(np.mean(h)), float(np.std(h, ddof=1) / math.sqrt(len(h))) if len(h) > 1 else 0.0
    if greedy_task:
        res["ppl"] = math.exp(-np.mean(lls))           # the harness's perplexity: exp(-mean log-likelihood)
    return res


def print_table(results):
    print(f"{'task':<14}{'split':<21}{'n':>6}{'acc':>8}{'±':>7}{'acc_norm':>10}{'±':>7}{'chance':>8}{'choices/s':>11}")
    for name, r in results.items():
        norm = f"{r['acc_norm']:>10.4f}{r['acc_norm_stderr']:>7.4f}" if "acc_norm" in r else f"{'-':>10}{'':>7}"
        print(f"{name:<14}{r['split']:<21}{r['n']:>6}{r['acc']:>8.4f}{r['acc_stderr']:>7.4f}{norm}"
              f"{r['chance']:>8.3f}{r['choices_per_s']:>11.1f}" + (f"   ppl {r['ppl']:.4g}" if "ppl" in r else ""))


# ---- 3. Samples. ---------------------------------------------------------------------------------
def sample(model, enc, prompt, max_new_tokens=200, temperature=0.8, top_k=200, seed=1337):
    device = next(model.parameters()).device
    ids = enc.encode_ordinary(prompt) or [enc.eot_token]    # no prompt: start of a document
    n = min(max_new_tokens, model.config.block_size - len(ids))
    if n <= 0:
        raise ValueError(f"the prompt has {len(ids)} tokens: no room left in the model's context of {model.config.block_size}")
    out = model.generate(torch.tensor([ids], device=device), n, temperature=temperature, top_k=top_k or None,
                         generator=torch.Generator(device).manual_seed(seed), n_vocab=enc.n_vocab)
    from tokenizer_compress import decode_sample
    return decode_sample(enc, out[0, len(ids):].tolist())


# ------------------------------------------------------------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(), epilog="see the top of eval.py for details",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py")
    p.add_argument("--bpb", default=None, metavar="DATA", help="held-out text (.txt/.txt.gz/.jsonl(.gz) file or folder) or a prepare.py shard folder (its val.bin)")
    p.add_argument("--stride", type=int, default=0, help="bits per byte: window step in tokens; 0 = half the model's context")
    p.add_argument("--tasks", default=None, help=f"comma-separated: {','.join(TASKS)}, or all (present files only); NAME=PATH for a file (any NAME: its layout is detected)")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder of the benchmark files")
    p.add_argument("--limit", type=int, default=None, help="only the first N items per task / the first N tokens for --bpb")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass")
    p.add_argument("--out", default=None, help="JSON results file; default: <ckpt without .pt>_eval.json")
    p.add_argument("--sample", default=None, metavar="PROMPT", help="generate a continuation of PROMPT (\"\" = start of a document)")
    p.add_argument("--max-new-tokens", type=int, default=200, help="sample length (capped by the model's context)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature; 0 = greedy")
    p.add_argument("--top-k", type=int, default=200, help="sample from the k most likely tokens; 0 = all")
    p.add_argument("--seed", type=int, default=1337, help="sampling seed")
    p.add_argument("--device", default="auto", help="auto (cuda if available, else cpu) | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=0, help="CPU threads; 0 = PyTorch's default (all cores). 1 is often faster for tiny models on a busy machine")
    args = p.parse_args(argv)
    if args.bpb is None and args.tasks is None and args.sample is None:
        p.error("nothing to do: give --bpb DATA, --tasks LIST and/or --sample PROMPT")
    try:
        run(args)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"eval.py: error: {e}")


def resolve_tasks(spec, data_dir):
    """--tasks "hellaswag,piqa=PATH,mine=PATH" or "all" (the tasks whose files are present) -> {name: file}.
    A name of your own needs a file; its layout is checked here, before the model is loaded."""
    tasks = {}
    for item in spec.split(","):
        name, _, path = item.strip().partition("=")
        if name == "all":
            for t in TASKS:
                try:
                    tasks[t] = find_task_file(t, data_dir)
                except FileNotFoundError:
                    pass
            if not tasks:
                raise FileNotFoundError(f"no benchmark files in {data_dir}; see --help for where to get them")
        elif name not in TASKS and not path:
            raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)} or all, or give a file: {name}=PATH")
        elif path and not os.path.exists(os.path.expanduser(path)):
            raise FileNotFoundError(f"{name}: {path} does not exist")
        else:
            tasks[name] = os.path.expanduser(path) if path else find_task_file(name, data_dir)
            if name not in TASKS:
                detect_layout(name, read_records(tasks[name])[:1], path)
    return tasks


def run(args):
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise ValueError("--batch-size and --limit must be positive")
    tasks = resolve_tasks(args.tasks, args.data_dir) if args.tasks else {}   # every file found before slow work
    model, enc, ckpt = load(args.ckpt, device)
    n = model.param_count()["total"]
    print(f"{args.ckpt}: step {ckpt.get('step', '?')}, {n / 1e6:.2f}M parameters, context {model.config.block_size}, "
          f"tokenizer {ckpt['tokenizer']['name']} ({enc.n_vocab} ids, {model.config.vocab_size} head rows)")
    report = {"ckpt": os.path.abspath(args.ckpt), "step": ckpt.get("step"), "tokenizer": ckpt["tokenizer"],
              "model_config": ckpt["model_config"], "limit": args.limit}
    out = args.out or os.path.splitext(args.ckpt)[0] + "_eval.json"

    def save():                                        # after every step: a late failure keeps the rest
        with open(out, "w") as f:
            json.dump(report, f, indent=1)
    if args.bpb:
        ids, n_bytes = load_bpb_data(args.bpb, enc, ckpt["tokenizer"])
        if args.limit:                                 # a prefix: count the bytes those tokens cover
            ids, n_bytes = ids[:args.limit], None
        elif text_bytes(enc, ids) != n_bytes:
            raise ValueError(f"{args.bpb}: the tokens decode to {text_bytes(enc, ids)} bytes, the text has {n_bytes}")
        r = bits_per_byte(model, enc, ids, n_bytes, args.stride, args.batch_size)
        report["bpb"] = {"data": args.bpb, **r}
        save()
        print(f"{args.bpb}: {r['bpb']:.4f} bits per byte, perplexity {r['ppl_per_token']:.2f} per token "
              f"({r['tokens']:,} tokens, {r['bytes']:,} bytes, window {r['window']}, stride {r['stride']})")
    if tasks:
        report["tasks"] = {}
        for name, path in tasks.items():
            report["tasks"][name] = evaluate_task(model, enc, name, path, args.limit, args.batch_size)
            save()
            if name == "sciq" and report["tasks"][name]["split"] == "validation":
                print("note: sciq is scored on validation; the harness (and published tables) use test")
        print_table(report["tasks"])
    if args.sample is not None:
        text = sample(model, enc, args.sample, args.max_new_tokens, args.temperature, args.top_k, args.seed)
        report["sample"] = {"prompt": args.sample, "text": text, "temperature": args.temperature,
                            "top_k": args.top_k, "seed": args.seed}
        print("-" * 80 + "\n" + args.sample + text + "\n" + "-" * 80)
    if args.bpb or tasks:
        save()
        print(f"wrote {out}")

if __name__ == "__main__":
    main()
