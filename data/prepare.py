"""
data/prepare.py — turn text into token shards that train.py reads with np.memmap.

    python data/prepare.py                                  # built-in default: Shakespeare's complete works
    python data/prepare.py --input=my.txt                   # a .txt / .txt.gz / .jsonl(.gz) file or a folder of them
    python data/prepare.py --input=../shared/data/corpora/gutenberg_children_train.txt.gz \
                           --val_input=../shared/data/corpora/gutenberg_children_val.txt.gz
    python data/prepare.py --tokenizer=data/tokenizers/shakespeare-16k.json  # re-encode with a compressed tokenizer

Writes into --out_dir:  train.bin, val.bin   token ids, uint16 when the vocabulary fits, else uint32,
                                             each document followed by <|endoftext|>
                        train_docs.npy, val_docs.npy   token offset where each document starts
                        meta.json            tokenizer identity (name, sha256, vocab), dtype, and per split
                                             the token, byte and document counts (bits-per-byte needs them)
Re-running with the same inputs and tokenizer reuses the shards.

Documents: one per .txt file, except that a line holding only <|endoftext|> separates documents inside a
file (the ../shared/data corpora use that); one per line of .jsonl (its "text" field). Validation holds
out WHOLE documents (deterministic, by a hash of the document), never a random slice of text, unless
--val_input gives a separate held-out set.

Streaming: documents are read, encoded (~4 MB at a time, on all cores) and appended to the shards as they
come, so memory is bounded by a chunk, not by the corpus (bench/prepare_bench.py measures it).
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):                    # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(HERE))
from data.corpus import SEPARATOR, chunked, corpus_fingerprint, corpus_info, hashed, iter_corpus  # noqa: E402

SPLITS = ("train", "val")
CHUNK = 1 << 22           # characters of documents encoded at a time: the memory bound, whatever the corpus size


def encode_documents(enc, docs, ex=None):
    """Tokens (int64) of a list of documents, each followed by <|endoftext|>, and each document's start
    offset. Threads of `ex` encode in parallel: tiktoken's Rust encoder releases the GIL."""
    eot = enc._special_tokens[SEPARATOR]
    encode = lambda d: enc.encode_to_numpy(d, disallowed_special=())    # noqa: E731  (= encode_ordinary)
    parts = list(ex.map(encode, docs) if ex else map(encode, docs))
    lens = np.fromiter((len(p) + 1 for p in parts), np.int64, len(parts))
    ids = np.full(int(lens.sum()), eot, np.int64)
    offsets = np.cumsum(lens) - lens
    for a, p in zip(offsets.tolist(), parts):
        ids[a:a + len(p)] = p
    return ids, offsets


def _write_npy(path, raw_path, n):
    """A 1-D int64 .npy of the n values in the raw file raw_path, copied through (never all in memory)."""
    with open(path, "wb") as f, open(raw_path, "rb") as raw:
        np.lib.format.write_array_header_1_0(f, {"descr": "<i8", "fortran_order": False, "shape": (n,)})
        shutil.copyfileobj(raw, f)


def prepare(input=None, val_input=None, out_dir=None, tokenizer="cl100k_base", val_every=10, overwrite=False):
    """Write the shards (see the module docstring) and return the meta dict."""
    from tokenizer_compress import load_tokenizer, tokenizer_identity
    enc = load_tokenizer(tokenizer)
    tok = tokenizer_identity(enc)
    name, files = corpus_info(input, val_input, val_every)
    if out_dir is None:
        # base encoding: data/<corpus>; a compressed tokenizer (made for one corpus): data/<its file stem>
        stem = os.path.basename(tokenizer).split(".")[0]
        out_dir = os.path.join(HERE, name if tokenizer == "cl100k_base" else stem)
    # Fingerprint of everything the shards depend on: tokenizer, documents and their split (corpus.hashed).
    # "v2:": streamed hashing; older meta.json files hold a fingerprint of another formula.
    fingerprint = lambda corpus_hash: "v2:" + hashlib.sha256((tok["sha256"] + corpus_hash).encode()).hexdigest()  # noqa: E731

    meta_path = os.path.join(out_dir, "meta.json")
    if os.path.exists(meta_path) and not overwrite:
        with open(meta_path) as f:
            old = json.load(f)
        if not old.get("fingerprint", "").startswith("v2:"):
            print(f"{out_dir} was written by an older data/prepare.py: rebuilding the shards")
        elif old["tokenizer"]["sha256"] == tok["sha256"]:
            # A read-only pass (no tokenizing) tells whether the shards hold this very text.
            if old.get("fingerprint") != fingerprint(corpus_fingerprint(iter_corpus(input, val_input, val_every))):
                raise ValueError(f"{out_dir} holds shards of other input text; choose another --out_dir or pass --overwrite")
            if all(os.path.exists(os.path.join(out_dir, f"{s}.bin")) for s in SPLITS):
                print(f"reusing {out_dir} (same inputs and tokenizer)")
                old["out_dir"] = out_dir
                return old
        elif old["tokenizer"]["source"] == tok["source"]:    # stale: encoded by an older version of this file
            print(f"{tok['source']} was rewritten since {out_dir} was made: rebuilding the shards")
        else:
            raise ValueError(f"{out_dir} holds shards of tokenizer {old['tokenizer']['name']!r}, not "
                             f"{tok['name']!r}; choose another --out_dir or pass --overwrite")

    os.makedirs(out_dir, exist_ok=True)
    dtype = np.uint16 if enc.n_vocab <= 2 ** 16 else np.uint32
    meta = {"tokenizer": tok, "dtype": np.dtype(dtype).name, "eot_token": enc._special_tokens[SEPARATOR],
            "corpus": name, "files": files, "splits": {s: {"tokens": 0, "bytes": 0, "documents": 0} for s in SPLITS}}
    tmp = {s: (os.path.join(out_dir, f"{s}.bin.tmp"), os.path.join(out_dir, f"{s}_docs.raw.tmp")) for s in SPLITS}
    h, t0 = hashlib.sha256(), time.time()
    from tqdm import tqdm
    try:
        with ThreadPoolExecutor(os.cpu_count() or 1) as ex, ExitStack() as files_open, \
                tqdm(unit="char", unit_scale=True, desc="tokenizing", disable=None) as bar:
            out = {s: [files_open.enter_context(open(p, "wb")) for p in tmp[s]] for s in SPLITS}   # ids, offsets
            for chunk in chunked(hashed(iter_corpus(input, val_input, val_every), h), CHUNK, lambda p: len(p[1])):
                for s in SPLITS:              # each split's documents of this chunk, appended to its files
                    docs = [d for split, d in chunk if split == s]
                    if docs:
                        ids, offsets = encode_documents(enc, docs, ex)
                        st = meta["splits"][s]
                        ids.astype(dtype).tofile(out[s][0])
                        (offsets + st["tokens"]).tofile(out[s][1])      # offsets in the whole split
                        st["tokens"] += len(ids)
                        st["documents"] += len(docs)
                        st["bytes"] += sum(len(d.encode("utf-8")) for d in docs)
                bar.update(sum(len(d) for _, d in chunk))
        meta["fingerprint"] = fingerprint(h.hexdigest())
        if os.path.exists(meta_path):         # old shards are replaced below: never leave their meta beside new ones
            os.remove(meta_path)
        for s in SPLITS:                      # complete: move into place (never a half-written shard)
            _write_npy(tmp[s][1] + ".npy", tmp[s][1], meta["splits"][s]["documents"])
            os.replace(tmp[s][1] + ".npy", os.path.join(out_dir, f"{s}_docs.npy"))
            os.replace(tmp[s][0], os.path.join(out_dir, f"{s}.bin"))
    finally:                                  # on success, the raw offsets; on an error, every partial file
        for p in (p for pair in tmp.values() for path in pair for p in (path, path + ".npy")):
            if os.path.exists(p):
                os.remove(p)
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(meta_path + ".tmp", meta_path)
    s = meta["splits"]
    dt = time.time() - t0
    print(f"wrote {out_dir}: train {s['train']['tokens']:,} tokens ({s['train']['documents']} docs, "
          f"{s['train']['bytes']:,} bytes), val {s['val']['tokens']:,} tokens ({s['val']['documents']} docs) "
          f"with {tok['name']} in {dt:.1f}s ({(s['train']['bytes'] + s['val']['bytes']) / 1e6 / dt:.1f} MB/s)")
    meta["out_dir"] = out_dir
    return meta


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(), formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", default=None, help="text file or folder (.txt, .txt.gz, .jsonl, .jsonl.gz); default: the built-in Shakespeare corpus")
    p.add_argument("--val_input", default=None, help="separate held-out file/folder; default: hold out 1 in --val_every documents")
    p.add_argument("--out_dir", default=None, help="default: data/<corpus name>, or data/<tokenizer file stem> with a compressed tokenizer")
    p.add_argument("--tokenizer", default="cl100k_base", help="base encoding name or a compressed tokenizer path (tokenizer_compress.py)")
    p.add_argument("--val_every", type=int, default=10, help="hold out one document in this many for validation")
    p.add_argument("--overwrite", action="store_true", help="replace shards of another tokenizer or input in --out_dir")
    args = p.parse_args(argv)
    try:
        prepare(args.input, args.val_input, args.out_dir, args.tokenizer, args.val_every, args.overwrite)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"prepare.py: error: {e}")


if __name__ == "__main__":
    main()
