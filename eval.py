"""eval.py — measure a nanopangu checkpoint: bits per byte, benchmarks, samples; compare runs' curves.

    python eval.py --ckpt out/ckpt.pt --bpb held_out.txt.gz       # or a prepare.py folder: val.bin
    python eval.py --ckpt out/ckpt.pt --tasks all --limit 200     # the task files present, 200 each
    python eval.py --ckpt out/ckpt.pt --tasks mine=my_items.jsonl # any name: layout from the keys
    python eval.py --ckpt out/ckpt.pt --tasks mmlu=~/mmlu/data,ceval=~/ceval-exam --shots 5
    python eval.py --ckpt out/ckpt.pt --sample "Once upon a time" --temperature 0.8 --top-k 200
    python eval.py --plot out_a,out_b --out cmp.png               # runs' training curves, overlaid

1. Bits per byte (--bpb) compare models whatever their tokenizers, which a loss per token cannot
   (paper, Compact Tokenizer; ../shared/PAPER.md §1).
2. Benchmarks (--tasks), scored as EleutherAI's lm-evaluation-harness does, beside chance, two
   baselines that need no model, and a margin.
3. Samples (--sample). Each run appends a JSON line to --out (<ckpt without .pt>_eval.jsonl).
Safe from a stranger: task files are read as JSON, CSV, text; a checkpoint with weights_only=True
unless --trust_checkpoint. Files (data/benchmarks.py reads them): --data-dir (../shared/data/eval)
under the names in TASKS (or .gz), or --tasks NAME=PATH in a layout of LAYOUTS. Public originals:
HellaSwag rowanz/hellaswag; PIQA yonatanbisk.com/piqa (+ -labels.lst); ARC, OpenBookQA, SciQ,
Social IQa allenai.org/data; WinoGrande allenai/winogrande; BoolQ google-research-datasets/
boolean-questions (github.com); LAMBADA OpenAI's lambada_test.jsonl; COPA super.gluebenchmark.com;
MMLU people.eecs.berkeley.edu/~hendrycks/data.tar; C-Eval huggingface.co/datasets/ceval/ceval-exam;
CMMLU haonan-li/CMMLU.
"""
import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch

# Benchmark files to items {"requests", "gold", ...}: data/benchmarks.py (plumbing, skip on a first read)
from data.benchmarks import TASKS, detect_layout, find_task_file, load_exam, load_task, read_records

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_DIR = os.path.join(os.path.dirname(HERE), "shared", "data", "eval")


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
    return model, enc, ckpt


def token_logprobs(model, h, targets, n_vocab, chunk=512):
    """log p(target) in fp32 (N,), and whether target is the greedy token (N,), for hidden rows h
    (N, C). The head's padding rows (vocab_size is a multiple of 64) are no tokens: -inf before the
    softmax. The harness on an exported model (export.py) keeps them: ~0.01 nats per token more."""
    logp, greedy = [], []
    for i in range(0, len(h), chunk):                  # chunks bound the (rows, V) logits in memory
        logits = model.lm_head(h[i:i + chunk].float()).float()              # (rows, V)
        logits[:, n_vocab:] = float("-inf")
        t = targets[i:i + chunk, None]                 # (rows, 1): the index for gather
        logp.append(torch.log_softmax(logits, dim=1).gather(1, t)[:, 0])   # beats logsumexp on CPU
        greedy.append(logits.gather(1, t)[:, 0] >= logits.amax(dim=1))
    return torch.cat(logp), torch.cat(greedy)


@torch.no_grad()
def score_pieces(model, pieces, n_requests, n_vocab, batch_size=16, progress=True, desc="scoring"):
    """Every score of this file: pieces [(request j, input ids, targets)], the last len(targets)
    inputs predicting the targets -> per request (sum of log p(targets) in nats, all greedy).
    Batched longest first (little padding), right-padded: no causal row looks at its padding."""
    from tqdm import tqdm
    device = next(model.parameters()).device
    pieces = sorted(pieces, key=lambda p: -len(p[1]))  # a batch's first row: its padded length
    logsum, greedy = [0.0] * n_requests, [True] * n_requests
    for i in tqdm(range(0, len(pieces), batch_size), desc=desc, disable=not progress, leave=False):
        batch = pieces[i:i + batch_size]
        x = torch.zeros(len(batch), len(batch[0][1]), dtype=torch.long)  # (B, longest input)
        b_idx, p_idx, targets = [], [], []
        for b, (_, inp, k) in enumerate(batch):
            x[b, :len(inp)] = torch.tensor(inp)
            b_idx += [b] * len(k)
            p_idx += range(len(inp) - len(k), len(inp))
            targets += k
        # the trunk, then the V x C head at the target rows only: it costs more than a tiny body
        x = x.to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16) if x.is_cuda else nullcontext():
            h = model.trunk(x).float()[b_idx, p_idx]                      # (targets, C)
        logp, top = token_logprobs(model, h, torch.tensor(targets, device=device), n_vocab)
        pos = 0
        for j, _, k in batch:                          # the flat rows back to their requests
            logsum[j] += logp[pos:pos + len(k)].double().sum().item()
            greedy[j] &= bool(top[pos:pos + len(k)].all())
            pos += len(k)
    return list(zip(logsum, greedy))


# ---- 1. Bits per byte of held-out text. ----------------------------------------------------------
def text_bytes(enc, ids):
    """UTF-8 bytes of the text that token ids encode (byte-level BPE is lossless: the raw text's
    count); special tokens (<|endoftext|>) are separators and carry no bytes."""
    specials = np.fromiter(enc._special_tokens.values(), dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    return len(enc.decode_bytes(ids[~np.isin(ids, specials)].tolist()))


def load_bpb_data(path, enc, ckpt_tokenizer):
    """(token ids, UTF-8 bytes of the raw text): text files as data/prepare.py reads them, or
    the val.bin of a folder it wrote with the checkpoint's tokenizer."""
    from data.corpus import input_files, iter_documents
    from data.prepare import encode_documents
    meta_path, val = os.path.join(path, "meta.json"), os.path.join(path, "val.bin")
    if not os.path.isfile(meta_path):                  # each document + <|endoftext|> (no bytes)
        docs = [d for f in input_files(path) for d in iter_documents(f)]
        if not docs:
            raise ValueError(f"no text in {path}")
        return encode_documents(enc, docs)[0], sum(len(d.encode("utf-8")) for d in docs)
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        tokenizer, dtype, n_bytes = meta["tokenizer"], meta["dtype"], meta["splits"]["val"]["bytes"]
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
    if text_bytes(enc, ids) != n_bytes:                # lossless BPE: the tokens ARE the text
        raise ValueError(f"{val} decodes to {text_bytes(enc, ids)} bytes, meta.json says {n_bytes}")
    return ids, n_bytes


def measure_bpb(model, enc, ids, n_bytes=None, stride=0, batch_size=16, progress=True):
    """bpb = sum(-log2 p(token)) / UTF-8 bytes, every token of `ids` scored once (n_bytes: by
    default what they decode to); also perplexity per token, which compares only models that share
    a tokenizer. One <|endoftext|> starts the stream, so the first token is predicted too."""
    from tokenizer_compress import bits_per_byte
    n_bytes = text_bytes(enc, ids) if n_bytes is None else n_bytes
    x = [enc.eot_token] + np.asarray(ids).tolist()     # eot, then ids
    N = len(x) - 1                                     # targets: x[1..N]
    W = min(model.config.block_size, N)                # window length in tokens
    S = stride or max(1, W // 2)                       # window step: after the first window every
    if not 0 < S <= W:                                 # token has >= W - S tokens of context
        raise ValueError(f"--stride={stride} must be between 1 and the window ({W} tokens)")
    starts = list(range(0, N - W + 1, S))
    if starts[-1] != N - W:                            # the last window ends on the last token
        starts.append(N - W)
    # Window s: inputs x[s:s+W] predict x[s+1:s+W+1]. The first window scores all W targets; a later
    # one only its last `new` = s - (previous start): those no earlier window scored.
    news = [W] + [s - prev for prev, s in zip(starts, starts[1:])]
    pieces = [(0, x[s:s + W], x[s + W - new + 1:s + W + 1]) for s, new in zip(starts, news)]
    nll = -score_pieces(model, pieces, 1, enc.n_vocab, batch_size, progress, "bits per byte")[0][0]
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
    whole, ctx = enc.encode_ordinary(context + continuation), enc.encode_ordinary(context)
    if len(whole) <= len(ctx):
        raise ValueError(f"continuation {continuation!r} adds no token to ...{context[-40:]!r}")
    return ctx, whole[len(ctx):]


def score_requests(model, enc, requests, batch_size=16, progress=True, desc="scoring"):
    """[(context, continuation)] -> [(sum of log p(continuation tokens), all tokens greedy)].
    Too long for the window: left-truncated as the harness does, (ctx + cont)[-(block_size+1):][:-1]
    (the context loses its start). The harness refuses a continuation longer than the window; we
    score it in pieces (rare: one PIQA solution has 288 tokens with a 16k tokenizer)."""
    T, pieces = model.config.block_size, []
    for j, (ctx, cont) in enumerate(requests):
        c, k = encode_pair(enc, ctx, cont)
        seq = c + k                        # a piece ending at `end`: inputs the <= T tokens before
        for end in range(len(seq), len(c), -T):        # one piece unless len(k) > T
            pieces.append((j, seq[max(0, end - 1 - T):end - 1], seq[max(len(c), end - T):end]))
    return score_pieces(model, pieces, len(requests), enc.n_vocab, batch_size, progress, desc)


# ---- Scores, and what a score must beat besides chance. -----------------------------------------
def baselines(items):
    """Accuracies of two answers that need no model, on the items the model is scored on:
    - label_prior: always the gold index most frequent among them (BoolQ: always "yes" or always
      "no"). An oracle of the label distribution: it reads the golds it is scored on. It is 1.0
      where the template fixes the gold's place (SciQ: the 4th), which tells a model nothing: it
      scores each choice on its own, never seeing the places.
    - shortest: always the choice with the fewest characters (ties: the first). A weak model's
      plain acc mostly counts tokens (fewer tokens, fewer log-probs summed): it lands near this."""
    golds = [it["gold"] for it in items]
    return {"label_prior": float(np.bincount(golds).max() / len(golds)),
            "shortest": float(np.mean([np.argmin(it["chars"]) == it["gold"] for it in items]))}


def evaluate_task(model, enc, name, path, limit=None, batch_size=16, progress=True, shots=0):
    """Score one task: acc (and acc_norm) ± standard error, chance, choices per second; multiple
    choice also the baselines, margin, below_chance; an exam also each subject's acc, acc_macro."""
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
    hits, hits_norm, margins, gold_lls, subjects = [], [], [], [], {}
    for it in items:
        ll, greedy = map(np.array, zip(*[next(scores) for _ in it["requests"]]))  # (choices,) each
        gold = it["gold"]
        hits.append(greedy.all() if it.get("greedy") else np.argmax(ll) == gold)  # ties: the first
        if it["lens"]:                                 # per character: long choices not penalised
            hits_norm.append(np.argmax(ll / it["lens"]) == gold)
        if len(ll) > 1:    # the gold's log-likelihood minus the best distractor's: nats, > 0 a hit
            margins.append(ll[gold] - np.delete(ll, gold).max())
        gold_lls.append(ll[gold])
        subjects.setdefault(it.get("subject"), []).append(hits[-1])
    # The margin is continuous: it moves while a model gains on the gold but not yet past the best
    # distractor, before accuracy (the share of items whose margin crossed 0) does.
    for key, values in (("acc", hits), ("acc_norm", hits_norm), ("margin", margins)):
        if values:      # the harness's stderr: sample std / sqrt(n); 0/1 hits: sqrt(acc (1-acc) / (n-1))
            v = np.asarray(values, dtype=np.float64)
            res[key] = float(v.mean())                 # "±" in the table
            res[key + "_stderr"] = float(v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0)
    if greedy_task:
        res["ppl"] = math.exp(-np.mean(gold_lls))      # the harness's: exp(-mean log-likelihood)
    else:     # > 2 standard errors under chance: the model prefers wrong answers; not noise
        res.update(baselines(items), below_chance=bool(chance - res["acc"] > 2 * res["acc_stderr"]))
    # An exam: acc over all questions (the harness weighs subjects by size), per subject, and the
    # subjects' mean, acc_macro, which papers often give.
    if None not in subjects:
        res["subjects"] = {s: {"n": len(h), "acc": float(np.mean(h))} for s, h in subjects.items()}
        res["acc_macro"] = float(np.mean([s["acc"] for s in res["subjects"].values()]))
        res["shots"] = shots
    return res


# the table's columns after task, split, n, acc: (result key, title, width, decimals); "-": none
COLUMNS = [("acc_stderr", "±", 7, 4), ("acc_norm", "acc_norm", 9, 4), ("acc_norm_stderr", "±", 7, 4),
           ("chance", "chance", 7, 3), ("label_prior", "prior", 7, 3), ("shortest", "short", 7, 3),
           ("margin", "margin", 8, 2), ("margin_stderr", "±", 7, 2), ("choices_per_s", "ch/s", 7, 0)]


def print_table(results):
    print(f"{'task':<14}{'split':<11}{'n':>6}{'acc':>8}" + "".join(f"{t:>{w}}" for _, t, w, _ in COLUMNS))
    for name, r in results.items():
        flag = "!" if r.get("below_chance") else " "   # the footnote below
        print(f"{name:<14}{r['split']:<11}{r['n']:>6}{r['acc']:>7.4f}{flag}"
              + "".join(f"{r[k]:>{w}.{d}f}" if k in r else f"{'-':>{w}}" for k, _, w, d in COLUMNS)
              + (f"  ppl {r['ppl']:.3g}" if "ppl" in r else ""))     # the row: < 120 characters
        if "acc_macro" in r:
            print(f"{'':14}acc_macro {r['acc_macro']:.4f} over {len(r['subjects'])} subjects, {r['shots']}-shot")
    if any(r.get("below_chance") for r in results.values()):
        print("! acc > 2 standard errors below chance: the model prefers wrong answers; not noise")


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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(), epilog="see eval.py's top",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--ckpt", help="checkpoint written by train.py (needed unless --plot)")
    add("--trust_checkpoint", action="store_true", help="load --ckpt by a full unpickle: runs code")
    add("--bpb", metavar="DATA", help="held-out text (.txt/.jsonl(.gz) file, folder), prepare.py's")
    add("--stride", type=int, default=0, help="bpb: window step in tokens; 0 = half the context")
    add("--tasks", help=f"comma-separated: {','.join(TASKS)}, or all (the files present); "
        "NAME=PATH for a file or exam folder (any NAME: its layout is detected)")
    add("--data-dir", default=DEFAULT_DATA_DIR, help="folder of the benchmark files")
    add("--shots", type=int, default=0, help="exams (mmlu, ceval, cmmlu): examples from dev/")
    add("--limit", type=int, help="the first N items per task (per exam subject); tokens of --bpb")
    add("--batch-size", type=int, default=16, help="sequences per forward pass")
    add("--out", help="results file, a JSON line appended per run (None: <ckpt without .pt>"
        "_eval.jsonl); with --plot the picture (None: curves_compared.png)")
    add("--sample", metavar="PROMPT", help='generate a continuation ("" = a new document)')
    add("--max-new-tokens", type=int, default=200, help="sample length (capped by the context)")
    add("--temperature", type=float, default=0.8, help="sampling temperature; 0 = greedy")
    add("--top-k", type=int, default=200, help="sample from the k most likely tokens; 0 = all")
    add("--seed", type=int, default=1337, help="sampling seed")
    add("--device", default="auto", help="auto (cuda if available, else cpu) | cpu | cuda | cuda:N")
    add("--threads", type=int, help="CPU threads (None: all; 1 is often faster for tiny models)")
    add("--plot", metavar="RUN_DIRS", help="comma-separated train.py folders: curves in a picture")
    args = p.parse_args(argv)
    if not args.plot and not (args.ckpt and (args.bpb or args.tasks or args.sample is not None)):
        p.error("nothing to do: give --ckpt CKPT with --bpb, --tasks and/or --sample; or --plot")
    try:
        plot(args) if args.plot else run(args)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"eval.py: error: {e}")
    except KeyboardInterrupt:                          # finished steps' results are in --out
        sys.exit("eval.py: interrupted; the results finished before it are in the results file (--out)")


def check_out(out, inputs, results=True):
    """--out may not be a folder, lie in a missing one, or be one of the run's inputs. With results,
    an existing --out must be a results file (a JSON object per line): its text is returned, kept
    byte for byte, and this run appends; any other file is never touched."""
    folder = os.path.dirname(os.path.abspath(out))     # checked before the hours of work
    if os.path.isdir(out) or not os.path.isdir(folder):
        raise ValueError(f"--out {out} is a folder; name a file in it" if os.path.isdir(out)
                         else f"--out {out}: its folder {folder} does not exist")
    for name, path in inputs:                          # e.g. --out pointing at the checkpoint
        if path and os.path.exists(path) and os.path.exists(out) and os.path.samefile(path, out):
            raise ValueError(f"--out {out} is the {name} this run reads; writing would destroy it")
    if not results or not os.path.exists(out):         # --plot's picture, or a new results file
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
    {name: path}, each file's layout (an exam folder: every split it needs) checked."""
    tasks = {}
    for name, _, path in (item.strip().partition("=") for item in spec.split(",")):
        path = os.path.expanduser(path)
        if name == "all":
            tasks.update({t: f for t in TASKS if (f := find_task_file(t, data_dir, required=False))})
            if not tasks:
                raise FileNotFoundError(f"no benchmark files in {data_dir}; see --help for sources")
        elif name not in TASKS and not path:
            raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)} or all, or give "
                             f"a file: {name}=PATH")
        elif path and not os.path.exists(path):
            raise FileNotFoundError(f"{name}: {path} does not exist")
        else:
            tasks[name] = path or find_task_file(name, data_dir)   # a known name: in --data-dir
            if os.path.isdir(tasks[name]):
                load_exam(name, tasks[name], 1, shots)  # 1 per subject: reads every split
            elif path:                                 # a file: the layout of its first record
                detect_layout(name, read_records(path)[:1], path)
    return tasks


def run(args):
    """Every input is checked first (numbers, task files, --out), then the model loads; the results
    file is rewritten after each step, so a crash late in a long run keeps what was measured."""
    zero_ok = {"temperature": "0 (greedy) or positive", "top_k": "0 (all tokens) or positive",
               "stride": "0 (half the context) or positive", "shots": "0 (zero-shot) or positive"}
    for option in [*zero_ok, "threads", "max_new_tokens", "batch_size", "limit"]:
        value = getattr(args, option)                  # None: not given
        if value is not None and not (0 if option in zero_ok else 1) <= value < math.inf:  # nan too
            rule = zero_ok.get(option, "at least 1")
            raise ValueError(f"--{option.replace('_', '-')} must be {rule} (got {value})")
    tasks = resolve_tasks(args.tasks, args.data_dir, args.shots) if args.tasks else {}  # layouts too
    out = args.out or os.path.splitext(args.ckpt)[0] + "_eval.jsonl"   # beside the checkpoint
    inputs = [("checkpoint --ckpt", args.ckpt), ("--bpb data", args.bpb)] + list(tasks.items())
    before = check_out(out, inputs, results=bool(args.bpb or tasks))    # earlier runs' results
    from model import resolve_device                   # one-line errors for devices we lack
    device = resolve_device(args.device)
    if args.threads:                                   # before any tensor work
        torch.set_num_threads(args.threads)
    model, enc, ckpt = load(args.ckpt, device, trust=args.trust_checkpoint)   # weights_only
    c, tok = model.config, ckpt["tokenizer"]
    print(f"{args.ckpt}: step {ckpt.get('step', '?')}, {model.param_count()['total'] / 1e6:.2f}M "
          f"parameters, context {c.block_size}, tokenizer {tok['name']} ({enc.n_vocab} ids)")
    report = {"ckpt": os.path.abspath(args.ckpt), "step": ckpt.get("step"), "tokenizer": tok,
              "model_config": ckpt["model_config"], "limit": args.limit,
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}     # this run's JSON line

    def save():                                 # after every step: a late failure keeps the rest;
        with open(out + ".tmp", "w", encoding="utf-8") as f:   # temp + rename: never half a file
            f.write(before + json.dumps(report, ensure_ascii=False) + "\n")
        os.replace(out + ".tmp", out)
    if args.bpb:
        ids, n_bytes = load_bpb_data(args.bpb, enc, tok)
        if args.limit:                                 # a prefix: the bytes those tokens cover
            ids, n_bytes = ids[:args.limit], None
        r = report["bpb"] = {"data": args.bpb, **measure_bpb(model, enc, ids, n_bytes, args.stride, args.batch_size)}
        save()
        print(f"{args.bpb}: {r['bpb']:.4f} bits per byte, perplexity {r['ppl_per_token']:.2f} per "
              f"token ({r['tokens']:,} tokens, {r['bytes']:,} bytes, window {r['window']}, stride "
              f"{r['stride']})")
    if tasks:
        report["tasks"] = {}
        for name, path in tasks.items():
            report["tasks"][name] = evaluate_task(model, enc, name, path, args.limit,
                                                  args.batch_size, shots=args.shots)
            save()
        print_table(report["tasks"])                   # beside chance, prior, shortest, margin
    if args.sample is not None:
        text = sample(model, enc, args.sample, args.max_new_tokens, args.temperature, args.top_k, args.seed)
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
            raise FileNotFoundError(f"--plot: {d} has no log.jsonl; name folders that train.py wrote")
    out = args.out or "curves_compared.png"
    check_out(out, [("log", os.path.join(d, "log.jsonl")) for d in runs], results=False)
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib: pip install matplotlib")
    import curves
    curves.draw(runs, out)
    print(f"wrote {out}: {len(runs)} run(s)")


if __name__ == "__main__":
    main()
