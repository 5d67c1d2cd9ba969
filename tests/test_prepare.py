"""data/prepare.py: documents, splits, shards that round-trip to the text, reuse, clear errors."""
import gzip
import json
import os

import numpy as np
import pytest

from data.corpus import load_corpus, iter_documents, SEPARATOR
from data.prepare import prepare
from tokenizer_compress import load_tokenizer

DOCS = [f"Document {i}: the quick brown fox, {i * 7} times. 中文 🙂\n\nSecond  paragraph." for i in range(30)]


def write_corpus(path, docs=DOCS):
    with gzip.open(path, "wt", encoding="utf-8") if path.endswith(".gz") else open(path, "w", encoding="utf-8") as f:
        f.write("".join(d + f"\n{SEPARATOR}\n" for d in docs))


def test_shards_round_trip_to_the_documents(tmp_path):
    src = str(tmp_path / "corpus.txt.gz")
    write_corpus(src)
    meta = prepare(src, out_dir=str(tmp_path / "out"))
    enc = load_tokenizer("cl100k_base")
    corpus = load_corpus(src)
    assert sorted(corpus["train"] + corpus["val"]) == sorted(DOCS)       # whole documents, none lost
    assert 0 < len(corpus["val"]) < len(DOCS)
    for split in ("train", "val"):
        ids = np.fromfile(tmp_path / "out" / f"{split}.bin", dtype=meta["dtype"])
        offsets = np.load(tmp_path / "out" / f"{split}_docs.npy")
        assert meta["dtype"] == "uint32"                                  # 100k vocab does not fit uint16
        assert enc.decode(ids.tolist()) == "".join(d + SEPARATOR for d in corpus[split])
        docs = [enc.decode(ids[a:b - 1].tolist()) for a, b in zip(offsets, list(offsets[1:]) + [len(ids)])]
        assert docs == corpus[split]                                      # offsets point at document starts
        s = meta["splits"][split]
        assert s["tokens"] == len(ids) and s["bytes"] == sum(len(d.encode()) for d in corpus[split])
    on_disk = json.load(open(tmp_path / "out" / "meta.json"))
    assert on_disk["tokenizer"]["sha256"] == meta["tokenizer"]["sha256"] and on_disk["eot_token"] == enc.eot_token


def test_rerun_reuses_and_other_text_or_tokenizer_is_refused(tmp_path, capsys):
    src = str(tmp_path / "a.txt")
    write_corpus(src)
    out = str(tmp_path / "out")
    prepare(src, out_dir=out)
    mtime = os.path.getmtime(os.path.join(out, "train.bin"))
    prepare(src, out_dir=out)
    assert "reusing" in capsys.readouterr().out and os.path.getmtime(os.path.join(out, "train.bin")) == mtime
    write_corpus(src, DOCS[:20])
    with pytest.raises(ValueError, match="holds shards of other input text"):
        prepare(src, out_dir=out)
    meta = json.load(open(os.path.join(out, "meta.json")))
    meta["tokenizer"]["sha256"] = "0" * 64
    json.dump(meta, open(os.path.join(out, "meta.json"), "w"))
    with pytest.raises(ValueError, match="holds shards of tokenizer"):
        prepare(src, out_dir=out)
    prepare(src, out_dir=out, overwrite=True)


def test_jsonl_folders_and_val_input(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    with open(tmp_path / "in" / "a.jsonl", "w") as f:
        f.writelines(json.dumps({"text": d}) + "\n" for d in DOCS[:10])
    write_corpus(str(tmp_path / "in" / "sub" / "b.txt"), DOCS[10:20])
    (tmp_path / "in" / "notes.md").write_text("ignored")
    write_corpus(str(tmp_path / "val.txt"), DOCS[20:22])
    c = load_corpus(str(tmp_path / "in"), val_input=str(tmp_path / "val.txt"))
    assert c["train"] == DOCS[:20] and c["val"] == DOCS[20:22]


def test_single_document_holds_out_its_tail_at_a_line_break(tmp_path):
    text = "".join(f"line {i}\n" for i in range(100))
    (tmp_path / "one.txt").write_text(text)
    c = load_corpus(str(tmp_path / "one.txt"))
    assert c["train"][0] + c["val"][0] == text.strip("\n") and c["val"][0].startswith("line 9")


def test_default_corpus_is_shakespeare_by_whole_works():
    c = load_corpus()
    assert c["name"] == "shakespeare" and len(c["train"]) + len(c["val"]) == 42
    assert 2 <= len(c["val"]) <= 8 and any("HAMLET" in d for d in c["train"] + c["val"])


@pytest.mark.parametrize("setup, msg", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text("\n\n  \n"), "the input is empty"),
    (lambda p: p.write_bytes("caf\xe9 au lait".encode("latin1")), "is not UTF-8 text"),
])
def test_clear_errors(tmp_path, setup, msg):
    p = tmp_path / "x.txt"
    setup(p)
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        prepare(str(p), out_dir=str(tmp_path / "out"))


def test_bad_jsonl_line(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": "ok"}\n{"body": "no text field"}\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: expected a JSON object with a \"text\" field"):
        list(iter_documents(str(tmp_path / "x.jsonl")))


def test_cli_error_is_one_line(tmp_path):
    import subprocess, sys
    r = subprocess.run([sys.executable, "data/prepare.py", "--input", str(tmp_path / "missing.txt")],
                       capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "does not exist" in r.stderr


def test_val_every_must_leave_training_text(tmp_path):
    write_corpus(str(tmp_path / "a.txt"))
    with pytest.raises(ValueError, match="--val_every=0 must be at least 2"):
        load_corpus(str(tmp_path / "a.txt"), val_every=0)
