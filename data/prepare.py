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
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if __package__ in (None, ""):                    # run as a script: make the repo root importable
    sys.path.insert(0, os.path.dirname(HERE))
from data.corpus import SEPARATOR, load_corpus  # noqa: E402


def encode_documents(enc, docs, desc="tokenizing"):
    """Tokens of all documents, each followed by <|endoftext|>, plus each document's start offset.
    tiktoken's batch encoder runs on all cores (its Rust core releases the GIL)."""
    from tqdm import tqdm
    eot = enc._special_tokens[SEPARATOR]
    threads = os.cpu_count() or 1
    out, offsets, n = [], [], 0
    with tqdm(total=sum(len(d) for d in docs), unit="char", unit_scale=True, desc=desc, disable=None) as bar:
        for i in range(0, len(docs), 4 * threads):
            group = docs[i:i + 4 * threads]
            for ids in enc.encode_ordinary_batch(group, num_threads=threads):
                offsets.append(n)
                out.append(np.asarray(ids + [eot], dtype=np.int64))
                n += len(ids) + 1
            bar.update(sum(len(d) for d in group))
    return np.concatenate(out), np.asarray(offsets, dtype=np.int64)


def prepare(input=None, val_input=None, out_dir=None, tokenizer="cl100k_base", val_every=10, overwrite=False):
    """Write the shards (see the module docstring) and return the meta dict."""
    from tokenizer_compress import load_tokenizer, tokenizer_identity
    enc = load_tokenizer(tokenizer)
    tok = tokenizer_identity(enc)
    corpus = load_corpus(input, val_input, val_every)
    if out_dir is None:
        # base encoding: data/<corpus>; a compressed tokenizer (made for one corpus): data/<its file stem>
        stem = os.path.basename(tokenizer).split(".")[0]
        out_dir = os.path.join(HERE, corpus["name"] if tokenizer == "cl100k_base" else stem)
    # Fingerprint of everything the shards depend on: documents, split, tokenizer.
    h = hashlib.sha256(tok["sha256"].encode())
    for split in ("train", "val"):
        for d in corpus[split]:
            h.update(split.encode() + hashlib.sha1(d.encode()).digest())
    fingerprint = h.hexdigest()

    meta_path = os.path.join(out_dir, "meta.json")
    if os.path.exists(meta_path) and not overwrite:
        with open(meta_path) as f:
            old = json.load(f)
        if old["tokenizer"]["sha256"] != tok["sha256"]:
            raise ValueError(f"{out_dir} holds shards of tokenizer {old['tokenizer']['name']!r}, not "
                             f"{tok['name']!r}; choose another --out_dir or pass --overwrite")
        if old.get("fingerprint") != fingerprint:
            raise ValueError(f"{out_dir} holds shards of other input text; choose another --out_dir or pass --overwrite")
        if all(os.path.exists(os.path.join(out_dir, f"{s}.bin")) for s in ("train", "val")):
            print(f"reusing {out_dir} (same inputs and tokenizer)")
            old["out_dir"] = out_dir
            return old

    os.makedirs(out_dir, exist_ok=True)
    dtype = np.uint16 if enc.n_vocab <= 2 ** 16 else np.uint32
    meta = {"tokenizer": tok, "dtype": np.dtype(dtype).name, "eot_token": enc._special_tokens[SEPARATOR],
            "corpus": corpus["name"], "files": corpus["files"], "fingerprint": fingerprint, "splits": {}}
    t0 = time.time()
    for split in ("train", "val"):
        ids, offsets = encode_documents(enc, corpus[split], desc=f"{split:>5}")
        tmp = os.path.join(out_dir, f"{split}.bin.tmp")
        ids.astype(dtype).tofile(tmp)
        os.replace(tmp, os.path.join(out_dir, f"{split}.bin"))       # never a half-written shard
        np.save(os.path.join(out_dir, f"{split}_docs.npy"), offsets)
        nbytes = sum(len(d.encode("utf-8")) for d in corpus[split])
        meta["splits"][split] = {"tokens": int(len(ids)), "bytes": nbytes, "documents": len(corpus[split])}
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(meta_path + ".tmp", meta_path)
    s = meta["splits"]
    print(f"wrote {out_dir}: train {s['train']['tokens']:,} tokens ({s['train']['documents']} docs, "
          f"{s['train']['bytes']:,} bytes), val {s['val']['tokens']:,} tokens ({s['val']['documents']} docs) "
          f"with {tok['name']} in {time.time() - t0:.1f}s")
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
