"""data/corpus.py + data/prepare.py: streamed documents, splits, shards that round-trip to the text, reuse,
clear errors."""
import gzip
import json
import os

import numpy as np
import pytest

from conftest import SHARED_DATA, needs_shared_data
from data import corpus, prepare as prep
from data.corpus import SEPARATOR, is_val_doc, iter_corpus, iter_documents
from data.prepare import prepare
from tokenizer_compress import load_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [f"Document {i}: the quick brown fox, {i * 7} times. 中文 🙂\n\nSecond  paragraph." for i in range(30)]


def write_corpus(path, docs=DOCS):
    with gzip.open(path, "wt", encoding="utf-8") if path.endswith(".gz") else open(path, "w", encoding="utf-8") as f:
        f.write("".join(d + f"\n{SEPARATOR}\n" for d in docs))


def splits(*args, **kw):
    pairs = list(iter_corpus(*args, **kw))
    return {s: [d for t, d in pairs if t == s] for s in ("train", "val")}


def test_shards_round_trip_to_the_documents(tmp_path):
    src = str(tmp_path / "corpus.txt.gz")
    write_corpus(src)
    meta = prepare(src, out_dir=str(tmp_path / "out"))
    enc = load_tokenizer("cl100k_base")
    c = splits(src)
    assert sorted(c["train"] + c["val"]) == sorted(DOCS)                 # whole documents, none lost
    assert c["val"] == [d for d in DOCS if is_val_doc(d, 10)] and c["train"] == [d for d in DOCS if not is_val_doc(d, 10)]
    assert sorted(os.listdir(tmp_path / "out")) == ["meta.json", "train.bin", "train_docs.npy", "val.bin", "val_docs.npy"]
    for split in ("train", "val"):
        ids = np.fromfile(tmp_path / "out" / f"{split}.bin", dtype=meta["dtype"])
        offsets = np.load(tmp_path / "out" / f"{split}_docs.npy")
        assert meta["dtype"] == "uint32" and offsets.dtype == np.int64   # 100k vocab does not fit uint16
        assert enc.decode(ids.tolist()) == "".join(d + SEPARATOR for d in c[split])
        docs = [enc.decode(ids[a:b - 1].tolist()) for a, b in zip(offsets, list(offsets[1:]) + [len(ids)])]
        assert docs == c[split]                                          # offsets point at document starts
        s = meta["splits"][split]
        assert s["tokens"] == len(ids) and s["bytes"] == sum(len(d.encode()) for d in c[split])
        assert s["documents"] == len(c[split])
    on_disk = json.load(open(tmp_path / "out" / "meta.json"))
    assert on_disk["tokenizer"]["sha256"] == meta["tokenizer"]["sha256"] and on_disk["eot_token"] == enc.eot_token
    assert on_disk["splits"] == meta["splits"] and on_disk["dtype"] == "uint32"


def test_shards_do_not_depend_on_the_chunk_size(tmp_path, monkeypatch):
    """Streaming: documents are encoded and appended ~CHUNK characters at a time; offsets continue
    across chunks. Tiny chunks (one document each) must give the very same files as one big chunk."""
    src = str(tmp_path / "c.txt")
    write_corpus(src)
    prepare(src, out_dir=str(tmp_path / "big"))
    monkeypatch.setattr(prep, "CHUNK", 50)
    prepare(src, out_dir=str(tmp_path / "small"))
    for f in ("train.bin", "val.bin", "train_docs.npy", "val_docs.npy"):
        assert (tmp_path / "big" / f).read_bytes() == (tmp_path / "small" / f).read_bytes(), f
    assert json.load(open(tmp_path / "big" / "meta.json")) == json.load(open(tmp_path / "small" / "meta.json"))


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 22])
def test_documents_do_not_depend_on_the_read_block(tmp_path, block):
    """Files are read in blocks cut at line breaks: separators, \\r\\n, multi-byte characters and a missing
    final newline read the same whatever the block size."""
    raw = ("<|endoftext|>\nfirst 中文\r\nline\n<|endoftext|>\n<|endoftext|>\n\n  \n<|endoftext|>\n"
           "second 🙂\n\nend\n<|endoftext|>\nnot a <|endoftext|> separator\n<|endoftext|>").encode()
    (tmp_path / "x.txt").write_bytes(raw)
    docs = list(iter_documents(str(tmp_path / "x.txt"), block))
    assert docs == ["first 中文\nline", "second 🙂\n\nend", "not a <|endoftext|> separator"]
    rows = [{"text": "a 中文"}, {"text": "  "}, {"text": "b\nc"}]
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "\n")
    assert list(iter_documents(str(tmp_path / "x.jsonl"), block)) == ["a 中文", "b\nc"]


@pytest.mark.slow                      # end to end: four runs of prepare
def test_rerun_reuses_and_other_text_or_tokenizer_is_refused(tmp_path, capsys):
    src = str(tmp_path / "a.txt")
    write_corpus(src)
    out = str(tmp_path / "out")
    prepare(src, out_dir=out)
    mtime = os.path.getmtime(os.path.join(out, "train.bin"))
    os.utime(src, (1, 1))                    # the fingerprint is the text: a touched file is the same corpus
    prepare(src, out_dir=out)
    assert "reusing" in capsys.readouterr().out and os.path.getmtime(os.path.join(out, "train.bin")) == mtime
    write_corpus(src, [d.replace("fox", "cat") for d in DOCS])          # same size, other text
    with pytest.raises(ValueError, match="holds shards of other input text"):
        prepare(src, out_dir=out)
    write_corpus(src)
    with pytest.raises(ValueError, match="holds shards of other input text"):
        prepare(src, out_dir=out, val_every=3)                          # same text, other split
    meta = json.load(open(os.path.join(out, "meta.json")))
    meta["tokenizer"].update(sha256="0" * 64, source="other.json")
    json.dump(meta, open(os.path.join(out, "meta.json"), "w"))
    with pytest.raises(ValueError, match="holds shards of tokenizer"):
        prepare(src, out_dir=out)
    prepare(src, out_dir=out, overwrite=True)
    prepare(src, out_dir=out)
    assert "reusing" in capsys.readouterr().out
    meta = json.load(open(os.path.join(out, "meta.json")))
    meta["fingerprint"] = "0" * 64               # shards of the older, in-memory prepare.py: rebuilt once
    json.dump(meta, open(os.path.join(out, "meta.json"), "w"))
    prepare(src, out_dir=out)
    prepare(src, out_dir=out)
    assert capsys.readouterr().out.count("rebuilding") == 1


def test_jsonl_folders_and_val_input(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    with open(tmp_path / "in" / "a.jsonl", "w") as f:
        f.writelines(json.dumps({"text": d}) + "\n" for d in DOCS[:10])
    write_corpus(str(tmp_path / "in" / "sub" / "b.txt"), DOCS[10:20])
    (tmp_path / "in" / "notes.md").write_text("ignored")
    write_corpus(str(tmp_path / "val.txt"), DOCS[20:22])
    c = splits(str(tmp_path / "in"), val_input=str(tmp_path / "val.txt"))
    assert c["train"] == DOCS[:20] and c["val"] == DOCS[20:22]


def test_single_document_holds_out_its_tail_at_a_line_break(tmp_path):
    text = "".join(f"line {i}\n" for i in range(100))
    (tmp_path / "one.txt").write_text(text)
    c = splits(str(tmp_path / "one.txt"))
    assert c["train"][0] + c["val"][0] == text.strip("\n") and c["val"][0].startswith("line 90")
    (tmp_path / "one.txt").write_text("x" * 100)                       # no line break: cut at 90%
    c = splits(str(tmp_path / "one.txt"))
    assert c == {"train": ["x" * 90], "val": ["x" * 10]}


def test_tiny_corpus_whose_documents_hash_to_one_split_holds_out_the_last(tmp_path):
    train_only = [d for d in DOCS if not is_val_doc(d, 10)][:3]
    write_corpus(str(tmp_path / "a.txt"), train_only)
    assert splits(str(tmp_path / "a.txt")) == {"train": train_only[:2], "val": train_only[2:]}
    val_only = [d for d in DOCS if is_val_doc(d, 2)][:3]
    write_corpus(str(tmp_path / "b.txt"), val_only)
    assert splits(str(tmp_path / "b.txt"), val_every=2) == {"train": val_only[:2], "val": val_only[2:]}


def test_default_corpus_is_shakespeare_by_whole_works(shakespeare):
    assert len(shakespeare["train"]) + len(shakespeare["val"]) == 42
    assert 2 <= len(shakespeare["val"]) <= 8 and any("HAMLET" in d for d in shakespeare["train"] + shakespeare["val"])


@pytest.mark.parametrize("name, setup, msg", [
    ("x.txt", lambda p: None, "does not exist"),
    ("x.txt", lambda p: p.write_text("\n\n  \n"), "the input is empty"),
    ("x.txt", lambda p: p.write_bytes(b"ok\n" * 5 + "caf\xe9 au lait".encode("latin1")), r"not UTF-8 text \(bad byte at offset 18\)"),
    ("x.txt.gz", lambda p: p.write_text("plain text, not gzip\n"), "is not a valid gzip file"),
    ("x.txt.gz", lambda p: p.write_bytes(gzip.compress(b"cut short\n" * 100)[:-30]), "is not a valid gzip file"),
    ("x.txt", lambda p: p.write_bytes("text\n".encode("utf-16")), "iconv -f UTF-16 -t UTF-8"),      # with a BOM
    ("x.txt", lambda p: p.write_bytes("text\n".encode("utf-16-le")), "iconv -f UTF-16LE -t UTF-8"),
    ("x.txt", lambda p: p.write_bytes("text\n".encode("utf-16").decode("latin1").encode()), "looks like UTF-16"),
])
def test_clear_errors_and_nothing_written(tmp_path, name, setup, msg):
    p = tmp_path / name
    setup(p)
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        prepare(str(p), out_dir=str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")              # not even an empty folder


def test_bad_jsonl_line(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: expected a JSON object with a \"text\" field"):
        list(iter_documents(str(tmp_path / "x.jsonl")))


def test_cli_error_is_one_line(tmp_path, script):
    r = script("data/prepare.py", "--input", tmp_path / "missing.txt")
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "does not exist" in r.stderr


def test_val_every_must_leave_training_text(tmp_path):
    write_corpus(str(tmp_path / "a.txt"))
    with pytest.raises(ValueError, match="--val_every=0 must be at least 2"):
        splits(str(tmp_path / "a.txt"), val_every=0)


@needs_shared_data
def test_real_gzip_corpus_streams_as_whole_books():
    """The ../shared/data held-out books, read in small blocks, are exactly the books the file holds."""
    path = os.path.join(SHARED_DATA, "corpora", "gutenberg_children_val.txt.gz")
    books = gzip.open(path, "rt", encoding="utf-8").read().split(f"\n{SEPARATOR}\n")
    books = [b.removesuffix(f"\n{SEPARATOR}").strip("\n") for b in books]
    assert list(iter_documents(path, 1 << 16)) == [b for b in books if b.strip()] and len(books) >= 10
    assert corpus.corpus_fingerprint(iter_corpus(path)) == corpus.corpus_fingerprint(iter_corpus(path))


def test_bad_input_never_destroys_shards_and_errors_are_one_line(tmp_path, monkeypatch):
    """Issue 25, one table: each case is run through main(argv) after a good run; it must give a one-line
    error (or the right behaviour), and the earlier shards must stay byte for byte."""
    import tokenizer_compress as tc
    src, out, tok = str(tmp_path / "a.txt"), str(tmp_path / "out"), str(tmp_path / "t.json")
    write_corpus(src)
    base = load_tokenizer("cl100k_base")
    small = lambda K: tc.compress(base, tc.count_corpus(base, DOCS, "a"), K, merge_closure=False)[0]  # noqa: E731
    tc.save_tokenizer(small(300), base, tok)
    prep.main([f"--input={src}", f"--out_dir={out}", f"--tokenizer={tok}"])
    shards = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    meta = json.load(open(os.path.join(out, "meta.json")))

    def rewrite_tokenizer():                # tokenizer_compress.py --overwrite onto the same path
        tc.save_tokenizer(small(280), base, tok)
    cases = [   # (what the user did first, arguments, expected one-line error)
        (rewrite_tokenizer, [f"--tokenizer={tok}"], "as it was before it was rewritten; choose another --out_dir "
                                                   "or pass --overwrite"),
        (None, ["--tokenizer=cl100k_base"], "holds shards of tokenizer"),
        (lambda: open(os.path.join(out, "meta.json"), "w").write("{oops"), [f"--tokenizer={tok}"], "meta.json is not JSON"),
        (lambda: json.dump({**meta, "tokenizer": "t"}, open(os.path.join(out, "meta.json"), "w")), [f"--tokenizer={tok}"],
         "meta.json: field 'tokenizer' is missing or damaged; pass --overwrite"),
        (lambda: json.dump([meta], open(os.path.join(out, "meta.json"), "w")), [f"--tokenizer={tok}"],
         "meta.json: field 'fingerprint' is missing"),
        (None, [f"--tokenizer={tmp_path / 'a.txt'}"], "unknown tokenizer"),
        (lambda: open(tok, "w").write("[]"), [f"--tokenizer={tok}"], "t.json holds a JSON list, not a tokenizer"),
        (None, [f"--out_dir={src}"], f"--out_dir={src} is a file"),
        (None, [f"--out_dir={tmp_path / 'new'}", f"--input={tmp_path / 'missing.txt'}"], "does not exist"),
    ]
    for setup, args, msg in cases:
        if setup:
            setup()
        with pytest.raises(SystemExit) as e:
            prep.main([f"--input={src}", f"--out_dir={out}"] + args)
        assert str(e.value).startswith("prepare.py: error: ") and msg in str(e.value), (args, str(e.value))
        assert "\n" not in str(e.value) and not os.path.exists(tmp_path / "new")
        assert {f: open(os.path.join(out, f), "rb").read() for f in shards if f != "meta.json"} == \
               {f: b for f, b in shards.items() if f != "meta.json"}, args            # byte for byte
        json.dump(meta, open(os.path.join(out, "meta.json"), "w"))
    # Ctrl-C while tokenizing: one line; the earlier shards stay
    monkeypatch.setattr(prep, "encode_documents", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(SystemExit, match="^prepare.py: interrupted"):
        prep.main([f"--input={src}", f"--out_dir={out}", "--tokenizer=cl100k_base", "--overwrite"])
    assert {f: open(os.path.join(out, f), "rb").read() for f in shards if f != "meta.json"} == \
           {f: b for f, b in shards.items() if f != "meta.json"}
