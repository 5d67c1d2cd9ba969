"""data/prepare.py — turn text into token shards that train.py reads with np.memmap.

    python data/prepare.py                          # built-in default: Shakespeare's complete works
    python data/prepare.py --input=my.txt           # a .txt(.gz) / .jsonl(.gz) file, or a folder
    python data/prepare.py --input=../shared/data/corpora/gutenberg_children_train.txt.gz \
                           --val_input=../shared/data/corpora/gutenberg_children_val.txt.gz
    python data/prepare.py --tokenizer=data/tokenizers/shakespeare-16k.json    # a compact tokenizer

Writes into --out_dir: train.bin, val.bin (token ids, uint16 if the vocabulary fits, else uint32;
each document followed by <|endoftext|>); train_docs.npy, val_docs.npy (token offset where each
document starts); meta.json (tokenizer identity: name, sha256, vocab; dtype; per split the token,
byte and document counts, for bits per byte).
Re-running with the same inputs and tokenizer reuses the shards; shards of other text or tokenizer
(or of this tokenizer file before it was rewritten) are never replaced without --overwrite:
checkpoints trained on them need them. Documents, and the split by whole documents: data/corpus.py.
Streamed: encoded ~4 MB at a time on all cores, then appended: memory is bounded by a chunk."""
import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):                    # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(HERE))
from data.corpus import (SEPARATOR, chunked, corpus_fingerprint, corpus_info,  # noqa: E402
                         hashed, iter_corpus)

SPLITS = ("train", "val")
CHUNK = 1 << 22           # characters encoded at a time: the memory bound, whatever the corpus size


def encode_documents(enc, docs, ex=None):
    """Tokens (int64) of a list of documents, each followed by <|endoftext|>, and each document's
    start offset. Threads of `ex` encode in parallel: tiktoken's Rust encoder releases the GIL."""
    encode = lambda d: enc.encode_to_numpy(d, disallowed_special=())    # noqa: E731 (ordinary)
    parts = list(ex.map(encode, docs) if ex else map(encode, docs))
    lens = np.array([len(p) + 1 for p in parts], np.int64)            # (n_docs,) with <|endoftext|>
    ids = np.concatenate([np.append(p, enc.eot_token) for p in parts]).astype(np.int64)
    return ids, np.cumsum(lens) - lens


def _write_npy(path, raw_path, n):
    """A 1-D int64 .npy of the n values in the raw file raw_path, copied through, not loaded."""
    with open(path, "wb") as f, open(raw_path, "rb") as raw:             # header, then the values
        np.lib.format.write_array_header_1_0(f, dict(descr="<i8", fortran_order=False, shape=(n,)))
        shutil.copyfileobj(raw, f)                                     # in blocks: bounded memory


def check_earlier_shards(out_dir, tok, fingerprint, corpus, overwrite):
    """The meta.json of shards in out_dir that can be reused as they are (same text and tokenizer),
    else None (none, or --overwrite). Shards of other text or another tokenizer are refused."""
    meta_path = os.path.join(out_dir, "meta.json")
    if overwrite or not os.path.exists(meta_path):
        return None                                              # nothing to reuse or protect
    try:
        old = json.loads(open(meta_path, "rb").read())
    except ValueError as e:                   # not JSON, not UTF-8
        raise ValueError(f"{meta_path} is not JSON ({e}); pass --overwrite to rebuild") from None
    old = old if isinstance(old, dict) else {}                  # each field read is checked
    old_tok = old.get("tokenizer") if isinstance(old.get("tokenizer"), dict) else {}
    tok_ok = all(isinstance(old_tok.get(k), str) for k in ("sha256", "source"))
    for field, ok in (("fingerprint", isinstance(old.get("fingerprint"), str)), ("tokenizer", tok_ok)):
        if not ok:
            raise ValueError(f"{meta_path}: field {field!r} is missing or damaged; pass --overwrite")
    refuse = "choose another --out_dir or pass --overwrite (checkpoints trained on them need them)"
    if old_tok["sha256"] != tok["sha256"]:
        # Another tokenizer, or this very file rewritten since: other ids than a checkpoint's
        what = ("as it was before it was rewritten" if old_tok["source"] == tok["source"]
                else f"(not {tok['source']!r})")
        raise ValueError(f"{out_dir} holds shards of tokenizer {old_tok['source']!r} {what}; {refuse}")
    if not old["fingerprint"].startswith("v2:"):                 # see `fingerprint` in prepare()
        print(f"{out_dir} was written by an older data/prepare.py: rebuilding the shards")
        return None
    if old["fingerprint"] != fingerprint(corpus_fingerprint(iter_corpus(*corpus))):  # read only
        raise ValueError(f"{out_dir} holds shards of other input text; {refuse}")
    return old if all(os.path.exists(os.path.join(out_dir, f"{s}.bin")) for s in SPLITS) else None


def prepare(input=None, val_input=None, out_dir=None, tokenizer="cl100k_base", val_every=10, overwrite=False):
    """Write the shards (see the module docstring) and return the meta dict."""
    from tokenizer_compress import load_tokenizer, tokenizer_identity
    enc = load_tokenizer(tokenizer)              # every input is checked before out_dir is touched
    tok, corpus = tokenizer_identity(enc), (input, val_input, val_every)
    name, files = corpus_info(*corpus)
    stem = name if tokenizer == "cl100k_base" else os.path.basename(tokenizer).split(".")[0]
    out_dir = out_dir or os.path.join(HERE, stem)    # data/<corpus>, or data/<tokenizer file stem>
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out_dir={out_dir} is a file; give a folder for the shards")
    # The shards' identity: tokenizer + documents + split (corpus.hashed); "v2": streamed hashing
    fingerprint = lambda text_sha: "v2:" + hashlib.sha256((tok["sha256"] + text_sha).encode()).hexdigest()
    if old := check_earlier_shards(out_dir, tok, fingerprint, corpus, overwrite):
        print(f"reusing {out_dir} (same inputs and tokenizer)")
        return {**old, "out_dir": out_dir}
    made, meta_path = not os.path.exists(out_dir), os.path.join(out_dir, "meta.json")
    os.makedirs(out_dir, exist_ok=True)
    dtype = "uint16" if enc.n_vocab <= 2 ** 16 else "uint32"     # the smallest that holds every id
    meta = dict(tokenizer=tok, dtype=dtype, eot_token=enc.eot_token, corpus=name, files=files,
                splits={s: Counter(tokens=0, bytes=0, documents=0) for s in SPLITS})   # update adds
    tmp = {s: [os.path.join(out_dir, s) + ext for ext in (".bin.tmp", "_docs.raw.tmp")] for s in SPLITS}
    h, t0 = hashlib.sha256(), time.time()                 # h: the text's sha256, in the same pass
    from tqdm import tqdm
    try:
        with ThreadPoolExecutor() as ex, ExitStack() as files_open, \
                tqdm(unit="char", unit_scale=True, desc="tokenizing", disable=None) as bar:
            out = {s: [files_open.enter_context(open(p, "wb")) for p in tmp[s]] for s in SPLITS}
            for chunk in chunked(hashed(iter_corpus(*corpus), h), CHUNK, lambda p: len(p[1])):
                for s, st in meta["splits"].items():    # this chunk's documents of each split
                    if docs := [d for split, d in chunk if split == s]:
                        ids, offsets = encode_documents(enc, docs, ex)
                        ids.astype(dtype).tofile(out[s][0])            # appended: streamed
                        (offsets + st["tokens"]).tofile(out[s][1])      # offsets in the whole split
                        st.update(tokens=len(ids), documents=len(docs),    # a Counter: update adds
                                  bytes=sum(len(d.encode("utf-8")) for d in docs))
                bar.update(sum(len(d) for _, d in chunk))
        meta["fingerprint"] = fingerprint(h.hexdigest())
        if os.path.exists(meta_path):     # old shards are replaced below: never leave their meta
            os.remove(meta_path)
        for s in SPLITS:                  # complete: move into place (never a half-written shard)
            _write_npy(tmp[s][1] + ".npy", tmp[s][1], meta["splits"][s]["documents"])
            os.replace(tmp[s][1] + ".npy", os.path.join(out_dir, f"{s}_docs.npy"))
            os.replace(tmp[s][0], os.path.join(out_dir, f"{s}.bin"))
    finally:                              # success: the raw offsets go; an error: all partial files
        for p in (p for pair in tmp.values() for path in pair for p in (path, path + ".npy")):
            if os.path.exists(p):                             # a temp file: never a result
                os.remove(p)
        if made and not os.listdir(out_dir):  # an input error: no empty folder left behind
            os.rmdir(out_dir)
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(meta_path + ".tmp", meta_path)         # meta.json last: it marks complete shards
    train, val, dt = meta["splits"]["train"], meta["splits"]["val"], time.time() - t0
    print(f"wrote {out_dir}: train {train['tokens']:,} tokens ({train['documents']} docs, "
          f"{train['bytes']:,} bytes), val {val['tokens']:,} tokens ({val['documents']} docs) with "
          f"{tok['name']} in {dt:.1f}s ({(train['bytes'] + val['bytes']) / 1e6 / dt:.1f} MB/s)")
    return {**meta, "out_dir": out_dir}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--input", default=None, help="file or folder: .txt, .jsonl, either .gz; default: Shakespeare")
    add("--val_input", default=None, help="separate held-out file/folder; default: by --val_every")
    add("--out_dir", default=None, help="default: data/<corpus>, or data/<tokenizer file stem>")
    add("--tokenizer", default="cl100k_base", help="cl100k_base or a tokenizer_compress.py .json")
    add("--val_every", type=int, default=10, help="hold out one document in this many")
    add("--overwrite", action="store_true", help="replace shards of other text or tokenizer")
    try:                                        # the options are prepare()'s parameters, by name
        prepare(**vars(p.parse_args(argv)))
    except (ValueError, OSError, RuntimeError) as e:
        sys.exit(f"prepare.py: error: {e}")
    except KeyboardInterrupt:
        sys.exit("prepare.py: interrupted; no half-written shard is left (re-run the same command)")


if __name__ == "__main__":
    main()
