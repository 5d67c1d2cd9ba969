"""Tests for tokenizer_compress.py (paper, Compact Tokenizer; ../shared/PAPER.md §1). Small synthetic corpora and small K
keep them fast; one test uses the built-in Shakespeare corpus (the `shakespeare` fixture fetches it)."""
import hashlib
import json
import os
import random
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import regex
from hypothesis import example, given, settings, strategies as st

import tokenizer_compress as tc

SEP = "\n<|endoftext|>\n"


def synthetic_docs(n_docs=40, words_per_doc=250, seed=0):
    """English-like text with inflections (so merges matter), numbers, punctuation, some Chinese and code."""
    rng = random.Random(seed)
    stems = ["walk", "talk", "play", "read", "light", "dark", "king", "queen", "house", "garden", "speak", "think",
             "love", "hope", "sing", "dance", "water", "stone", "dream", "night", "morning", "friend", "answer"]
    suffixes = ["", "", "s", "ing", "ed", "er", "ness", "ful", "ly"]
    extras = ["你好，世界。", "def f(x):\n    return x ** 2\n", "123", "4567", "—", "(", ")", ";", "!", "?\n", "\n\n"]
    syllables = ["ka", "ro", "mi", "sel", "tan", "vor", "qu", "ith", "ber", "lo", "un", "dra", "pe", "zul", "ost", "ha"]
    stems += ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))) for _ in range(200)]   # pseudo-words
    docs = []
    for _ in range(n_docs):
        words = []
        for _ in range(words_per_doc):
            w = rng.choice(stems) + rng.choice(suffixes)
            words.append(rng.choice(extras) if rng.random() < 0.06 else (w.capitalize() if rng.random() < 0.1 else w))
        docs.append(" ".join(words))
    return docs


@pytest.fixture(scope="module")
def base():
    return tc.load_tokenizer("cl100k_base")


@pytest.fixture(scope="module")
def docs():
    return synthetic_docs()


@pytest.fixture(scope="module")
def table(base, docs):
    return tc.count_corpus(base, docs, "synth")


@pytest.fixture(scope="module")
def compressed(base, table):
    """Plain top-K encodings (the paper's) at several K, down to the bytes-only K = 256."""
    return {K: tc.compress(base, table, K, merge_closure=False)[0] for K in (256, 300, 400, 600)}


@pytest.fixture(scope="module")
def closed(base, table):
    """The default: top-K with merge closure."""
    return tc.compress(base, table, 400)


def non_byte(enc):
    return np.array([len(t) > 1 for t, _ in sorted(enc._mergeable_ranks.items(), key=lambda kv: kv[1])])


# ---- 1. counting ---------------------------------------------------------------------------------
def test_counts_match_tiktoken_and_sum_to_corpus_tokens(base, docs, table):
    direct = [base.encode_ordinary(d) for d in docs]
    expected = np.bincount(np.concatenate(direct), minlength=base.n_vocab)
    expected[base.eot_token] += len(docs)                   # one <|endoftext|> per document, as in the shards
    assert np.array_equal(table["counts"], expected)
    assert table["counts"].sum() == table["tokens"] == sum(map(len, direct)) + len(docs)
    assert table["bytes"] == sum(len(d.encode()) for d in docs)
    # the piece table re-encodes the corpus exactly as tiktoken does
    assert np.array_equal(tc.reencode(base, table), expected)


def test_counting_streams_documents(base, docs, table):
    """Any iterable of documents (a corpus stream) counts the same as a list, whatever the chunking."""
    again = tc.count_corpus(base, (d for d in docs), "synth")
    assert np.array_equal(again["counts"], table["counts"]) and again["fingerprint"] == table["fingerprint"]
    from data.corpus import chunked
    assert list(chunked(["aaaaa", "bbbbb", "ccccc", "d"], target=6)) == [["aaaaa", "bbbbb"], ["ccccc", "d"]]
    assert list(chunked(["x" * 10], target=6)) == [["x" * 10]] and list(chunked([], target=6)) == []


def test_sizes_and_parameter_formula():
    assert [tc.parse_size(s) for s in ("16k", "1.5K", "300")] == [16000, 1500, 300]
    assert [tc.size_label(k) for k in (16000, 20522)] == ["16k", "20522"]
    # emb+head = 2·V·C, V = ids padded to 64: the paper's 48k = 48,000 ordinary tokens + <|endoftext|>
    assert tc.vocab_params(48_001, 1792) == 2 * 48_064 * 1792 and tc.vocab_params(16_001, 256) == 2 * 16_064 * 256
    assert tc.vocab_params(16_000, 256) == 2 * 16_000 * 256
    from model import VOCAB_MULTIPLE                         # the padding train.py applies (model.padded_vocab)
    assert tc.PAD_TO == VOCAB_MULTIPLE


def test_tool_imports_neither_torch_nor_the_model():
    """It must start instantly: no torch, no model.py (house rule: imports run one way)."""
    code = "import sys, tokenizer_compress; print(sorted({'torch', 'model'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tc.HERE)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_empty_corpus_is_refused(base):
    for docs in ([], ["", "  \n "]):
        with pytest.raises(ValueError, match="empty"):
            tc.count_corpus(base, docs, "nothing")


def test_counts_file_roundtrip_and_other_encoding_refused(base, table, compressed, tmp_path):
    path = str(tmp_path / "synth-counts.npz")
    tc.save_counts(table, path)
    again = tc.load_counts(path, base)
    assert np.array_equal(again["counts"], table["counts"]) and again["pieces"] == table["pieces"]
    assert again["fingerprint"] == table["fingerprint"]
    other = tc.count_corpus(compressed[600], ["some other text"], "other")       # counted with another encoding
    tc.save_counts(other, path)
    with pytest.raises(ValueError, match="counts of encoding"):
        tc.load_counts(path, base)


# ---- 3. compress ---------------------------------------------------------------------------------
def test_ids_dense_in_rank_order_bytes_and_eot_kept(base, compressed):
    for K, enc in compressed.items():
        ranks = enc._mergeable_ranks
        assert sorted(ranks.values()) == list(range(K)) and enc.n_vocab == K + 1
        assert enc._special_tokens == {"<|endoftext|>": K} and enc.eot_token == K
        assert all(bytes([b]) in ranks for b in range(256))
        old = enc.new_to_old
        assert old[:K] == sorted(old[:K]) and old[K] == base.eot_token        # original relative order
        assert all(base._mergeable_ranks[t] == old[r] for t, r in ranks.items())
        ids = enc.encode("walking 你好 🙂 <|endoftext|>", allowed_special="all")
        assert max(ids[:-1]) < K and ids[-1] == K


def test_no_kept_token_is_dead_on_its_corpus(base, docs, compressed):
    for K, enc in compressed.items():
        produced = np.bincount(np.concatenate([enc.encode_ordinary(d) for d in docs]), minlength=enc.n_vocab)
        assert (produced[:K][non_byte(enc)] > 0).all(), f"K={K}: a kept token is never produced"


def test_refill_replaces_dead_tokens(base, table):
    _, st_ = tc.compress(base, table, 400, merge_closure=False)
    assert st_["size"] == 400 and not st_["exhausted"]
    assert st_["refilled"] >= st_["dead_naive"] > 0        # the naive top-K had dead tokens; all were replaced
    assert 0 < st_["coverage"] < 1 and st_["tokens_per_byte"] > table["tokens"] / table["bytes"]


@pytest.mark.parametrize("closure", [False, True])
def test_smaller_corpus_vocabulary_than_K_is_reported(base, table, closure):
    enc, st_ = tc.compress(base, table, 5000, closure)
    assert st_["exhausted"] and st_["size"] < 5000 and enc.n_vocab == st_["size"] + 1


def test_K_out_of_range_is_refused(base, table):
    for K in (255, 100_257):
        with pytest.raises(ValueError, match="outside 256"):
            tc.compress(base, table, K)


# ---- merge reachability ----------------------------------------------------------------------------
def test_python_merge_matches_tiktoken(compressed, docs):
    """Our pure-Python merge is tiktoken's merge: same tokens for pieces that are not whole tokens."""
    enc = compressed[400]
    pieces = {p.encode() for d in docs[:5] for p in regex.findall(enc._pat_str, d)}
    checked = 0
    for p in pieces:
        if p not in enc._mergeable_ranks:
            assert [enc._mergeable_ranks[x] for x in tc.bpe_merge(p, enc._mergeable_ranks)] == enc._encode_single_piece(p)
            checked += 1
    assert checked > 20


@pytest.mark.slow          # a few seconds: the full suite runs it, the fast lane does not
def test_merge_unreachable_flags_planted_case_and_passes_full_vocab(base):
    assert tc.merge_unreachable(base) == []                  # a BPE-trained vocabulary: every token reachable
    ranks, bytes_ = base._mergeable_ranks, [base._mergeable_ranks[bytes([b])] for b in range(256)]
    word, trace = b" walking", []
    tc.bpe_merge(word, ranks, trace)
    t = ranks[word]
    assert trace[-1] == word and len(trace) > 1
    planted = tc.build_encoding(base, bytes_ + [t])          # " walking" kept, its merge parents dropped
    new_t = planted._mergeable_ranks[word]
    assert tc.merge_unreachable(planted) == [new_t]
    assert planted.encode_ordinary(" walking") == [new_t]    # produced as a whole piece ...
    assert new_t not in planted.encode_ordinary(" walkings")  # ... never inside a longer word
    closed = tc.build_encoding(base, bytes_ + [ranks[p] for p in trace])   # with its parents: reachable
    assert tc.merge_unreachable(closed) == []


def test_merge_closure_makes_kept_tokens_reachable(base, docs, table, closed):
    _, plain = tc.compress(base, table, 400, merge_closure=False)
    enc, st_ = closed
    assert plain["unreachable"] > 0 and st_["unreachable"] == 0 and st_["size"] <= 400
    # every kept token is used, except merge parents that only ever appear inside longer tokens
    produced = np.bincount(np.concatenate([enc.encode_ordinary(d) for d in docs]), minlength=enc.n_vocab)
    assert ((produced[:st_["size"]] == 0) & non_byte(enc)).sum() == st_["intermediate_only"]


def test_merge_closure_is_a_valid_bpe_on_held_out_text(compressed, closed):
    """With the closure, tiktoken's encoding of every regex piece of text the tokenizer never saw equals
    plain BPE merges (cl100k's merge order) over the kept tokens only — the pure-Python bpe_merge, which
    has no whole-piece lookup. The plain top-K breaks this on pieces that are merge-unreachable tokens."""
    held_out = " ".join(synthetic_docs(n_docs=10, seed=1))
    pieces = {p.encode() for p in regex.findall(closed[0]._pat_str, held_out)}

    def mismatches(enc):
        ranks = enc._mergeable_ranks
        return sum([ranks[t] for t in tc.bpe_merge(p, ranks)] != enc._encode_single_piece(p) for p in pieces)
    assert len(pieces) > 300
    assert mismatches(closed[0]) == 0
    assert mismatches(compressed[400]) > 0                   # the plain top-K of the same size is not a BPE


# ---- round trip -----------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None, derandomize=True)    # the same examples on every run (CI)
@given(s=st.text() | st.text(alphabet=st.sampled_from("ab 你好🙂\n\t\u0301\ufffd\x00'"), max_size=60))
@example(s="你好，世界！这是一个测试。")
@example(s="emoji 👍🏽👨‍👩‍👧 and flags 🇫🇷")
@example(s="def f(x):\n\treturn {'a': x**2}  # code\n\n\n")
@example(s="   \n\n\t\t   \r\n  ")
@example(s="\x00\x01\x7f\ufeff\ufffd\U0010ffff e\u0301")
def test_roundtrip_every_K(compressed, closed, s):
    for enc in [*compressed.values(), closed[0]]:
        ids = enc.encode_ordinary(s)
        assert enc.decode(ids) == s and all(i < enc.eot_token for i in ids)


# ---- 4. save / load -------------------------------------------------------------------------------
def test_save_load_in_tiktoken_format(base, compressed, tmp_path, monkeypatch):
    enc = compressed[400]
    loaded = tc.save_tokenizer(enc, base, str(tmp_path / "synth-400.json"))
    for path in (tmp_path / "synth-400.json", tmp_path / "synth-400.tiktoken"):
        again = tc.load_tokenizer(str(path))
        assert again._mergeable_ranks == enc._mergeable_ranks and again._special_tokens == enc._special_tokens
        assert again.source == str(tmp_path / "synth-400.json") and again.new_to_old == enc.new_to_old
        assert tc.tokenizer_identity(again) == tc.tokenizer_identity(loaded)
        assert tc.tokenizer_identity(again)["sha256"] == tc.tokenizer_identity(enc)["sha256"]
        assert tc.tokenizer_identity(again)["name"] == "synth-400"
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")              # tiktoken's own loader reads our ranks file
    import tiktoken.load
    assert tiktoken.load.load_tiktoken_bpe(str(tmp_path / "synth-400.tiktoken")) == enc._mergeable_ranks
    with open(tmp_path / "synth-400.tiktoken", "ab") as f:
        f.write(b"eHl6 400\n")
    with pytest.raises(ValueError, match="does not match"):
        tc.load_tokenizer(str(tmp_path / "synth-400.json"))
    with pytest.raises(ValueError, match="not found"):
        tc.load_tokenizer(str(tmp_path / "missing.json"))


# ---- the command line -------------------------------------------------------------------------------
@pytest.fixture
def synth_dir(docs, tmp_path):
    corpus = tmp_path / "synth"
    corpus.mkdir()
    for i in range(2):
        (corpus / f"part{i}.txt").write_text(SEP.join(docs[i * 20:(i + 1) * 20]))
    return corpus


def test_cli_pipeline_and_errors(synth_dir, tmp_path, capsys):
    out_dir = str(tmp_path / "tok")
    args = [f"--input={synth_dir}", f"--out_dir={out_dir}", "--sizes=300,400,5000"]
    tc.main(args)
    out = capsys.readouterr().out
    assert "--vocab=auto:" in out and "next: python data/prepare.py --tokenizer=" in out and "plain t/b" in out
    written = [f for f in os.listdir(out_dir) if f.endswith(".json") and "coverage" not in f]
    assert len(written) == 1 and os.path.exists(os.path.join(out_dir, written[0][:-5] + ".tiktoken"))
    assert {"synth-counts.npz", "synth-coverage.json"} <= set(os.listdir(out_dir))
    enc = tc.load_tokenizer(os.path.join(out_dir, written[0]))
    assert enc.name == written[0][:-5] and enc.decode(enc.encode_ordinary("walking 你好")) == "walking 你好"
    assert tc.merge_unreachable(enc) == []                             # merge closure is the default
    tc.main(args + ["--vocab=400", "--merge_closure=false"])          # re-run: counts are reused
    out = capsys.readouterr().out
    plain = os.path.join(out_dir, "synth-400-plain.json")           # the option is in the default name
    assert "reusing counts" in out and "plain t/b" not in out and os.path.exists(plain)
    assert tc.merge_unreachable(tc.load_tokenizer(plain))             # the paper's plain top-K
    for bad, msg in (("--vocab=100", "outside 256"), ("--vocab=5000", "keeps only"), ("--vocab=lots", "cannot read"),
                     ("--n_embd=0", "must be positive"), ("--sizes=,", "lists no size")):
        with pytest.raises(SystemExit, match=f"tokenizer_compress.py: error: .*{msg}"):
            tc.main(args + [bad])
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(SystemExit, match="tokenizer_compress.py: error: .*empty"):
        tc.main([f"--input={tmp_path / 'empty.txt'}", f"--out_dir={out_dir}"])


@pytest.mark.parametrize("closure", [pytest.param("true", marks=pytest.mark.slow), "false"])   # true: slow lane
def test_suggested_size_is_accepted_and_produced(synth_dir, tmp_path, capsys, closure):
    """The note's --vocab=S (all the corpus keeps alive) is what the next run accepts and produces — the
    refill is path-dependent, so a run starting from the top S candidates used to end smaller than S."""
    args = [f"--input={synth_dir}", f"--out_dir={tmp_path / 'tok'}", f"--merge_closure={closure}"]
    tc.main(args + ["--sizes=300,5000", "--vocab=300"])
    S = int(re.search(r"\(--vocab=(\d+)\)", capsys.readouterr().out).group(1))
    tc.main(args + ["--sizes=300", f"--vocab={S}", f"--out={tmp_path / 'tok' / 'S.json'}"])
    enc = tc.load_tokenizer(str(tmp_path / "tok" / "S.json"))
    assert enc.n_vocab == S + 1 and len(enc._mergeable_ranks) == S
    with pytest.raises(SystemExit, match=f"keeps only .* use --vocab={S}"):
        tc.main(args + ["--sizes=300", f"--vocab={S + 1}"])


@pytest.mark.parametrize("bad, msg", [
    (["--vocab=0"], "K=0 is outside 256"),
    (["--tolerance=-0.5"], "--tolerance=-0.5 must be >= 0"),
    (["--input=NOTGZ"], "is not a valid gzip file"),
])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, bad, msg, script):
    (tmp_path / "x.txt.gz").write_text("plain text, not gzip\n")
    bad = [b.replace("NOTGZ", str(tmp_path / "x.txt.gz")) for b in bad]
    r = script("tokenizer_compress.py", f"--out_dir={tmp_path / 'tok'}", "--sizes=300", *bad)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0, r.stderr
    assert r.stderr.startswith("tokenizer_compress.py: error: ") and msg in r.stderr
    assert not os.path.exists(tmp_path / "tok")


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        tc.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0 and "usage: tokenizer_compress.py" in out and "(default: auto)" in out
    assert "--merge_closure [{true,false}]" in out and "2·V·C" in out and "48,064 rows" in out


# ---- the default corpus ---------------------------------------------------------------------------
@pytest.mark.slow          # a few seconds: the full suite runs it, the fast lane does not
def test_shakespeare_8k(base, shakespeare):
    docs = shakespeare["train"]
    table = tc.count_corpus(base, docs, "shakespeare")
    enc, st_ = tc.compress(base, table, 8000, merge_closure=False)
    assert st_["dead_naive"] > 0 and st_["unreachable_naive"] > 0 and st_["size"] == 8000
    produced = np.bincount(np.concatenate(enc.encode_ordinary_batch(docs)), minlength=enc.n_vocab)
    assert (produced[:8000][non_byte(enc)] > 0).all()
    assert produced.sum() + len(docs) == st_["tokens"]


# ---- the paper's plain top-K, on its own ------------------------------------------------------------
def test_plain_top_k_by_hand():
    """Bytes first (every string still encodes), then the most frequent others; equal counts by lower id
    (rank); unused tokens and specials never; at most K in all."""
    counts = np.array([0, 5, 7, 0, 3, 7, 9, 2, 0, 50])        # ids 0-1: bytes, 9: a special token
    assert tc.plain_top_k(counts, 5, [0, 1], [9]) == [0, 1, 6, 2, 5]     # 9 > 7 = 7 (id 2 before 5)
    assert tc.plain_top_k(counts, 99, [0, 1], [9]) == [0, 1, 6, 2, 5, 4, 7]  # 3 and 8 are never used
    assert tc.plain_top_k(counts, 2, [0, 1], [9]) == [0, 1]


def test_merge_closure_false_starts_from_plain_top_k(base, table):
    """--merge_closure=false is the paper's method: its first (naive) set is plain_top_k's."""
    byte_ids = [base._mergeable_ranks[bytes([b])] for b in range(256)]
    naive = tc.build_encoding(base, tc.plain_top_k(table["counts"], 400, byte_ids, base._special_token_values))
    unused = (tc.reencode(naive, table)[:400] == 0) & non_byte(naive)
    _, stats = tc.compress(base, table, 400, merge_closure=False)
    assert stats["dead_naive"] == unused.sum() > 0 and stats["unreachable_naive"] == len(tc.merge_unreachable(naive))


# ---- bad input (issues 24, 25): one table, each case a one-line error or the right behaviour -------------
def edit_json(path, change):
    info = json.load(open(path))
    json.dump(change(info), open(path, "w"))


def edit_ranks(json_path, change):
    """Rewrite the .tiktoken lines and record their new sha256, as a careless or hostile hand would."""
    rpath = json_path[:-5] + ".tiktoken"
    raw = change(open(rpath, "rb").read().splitlines(True))
    open(rpath, "wb").write(b"".join(raw))
    edit_json(json_path, lambda i: {**i, "ranks_sha256": hashlib.sha256(b"".join(raw)).hexdigest()})


class Evil:
    def __reduce__(self):
        return (open, ("PWNED", "w"))           # unpickling this creates a file


TOKENIZER_FILE_CASES = [   # (change made to a good tokenizer's files, expected one-line error)
    (lambda j: edit_json(j, lambda i: [i]), "holds a JSON list, not a tokenizer"),
    (lambda j: open(j, "w").write("{not json"), "is not JSON"),
    (lambda j: edit_json(j, lambda i: {k: v for k, v in i.items() if k != "ranks_file"}), 'field "ranks_file" must be a str, not null'),
    (lambda j: edit_json(j, lambda i: {**i, "special_tokens": [["<|endoftext|>", 300]]}), 'field "special_tokens" must be a dict'),
    (lambda j: edit_json(j, lambda i: {**i, "new_to_old": "0 1 2"}), 'field "new_to_old" must be a list'),
    (lambda j: edit_json(j, lambda i: {**i, "name": 7}), 'field "name" must be a str, not 7'),
    (lambda j: edit_json(j, lambda i: {**i, "format": "x"}), "field \"format\" must be 'nanopangu-tokenizer/1'"),
    (lambda j: edit_json(j, lambda i: {**i, "special_tokens": {"<|endoftext|>": 5}}), "an id of its own"),   # = '&'
    (lambda j: edit_json(j, lambda i: {**i, "new_to_old": i["new_to_old"][:-2]}), '"new_to_old" must hold one'),
    (lambda j: edit_json(j, lambda i: {**i, "pat_str": "("}), 'field "pat_str": '),
    (lambda j: edit_ranks(j, lambda lines: lines + [lines[300].split()[0] + b" 400\n"]), "a token is listed twice"),
    (lambda j: edit_ranks(j, lambda lines: lines[:-1] + [lines[-1].split()[0] + b" 7\n"]), "a rank is listed twice"),
    (lambda j: edit_ranks(j, lambda lines: lines + [b"no-base64! 400\n"]), 'line 401: expected "base64(token) rank"'),
    (lambda j: open(j[:-5] + ".tiktoken", "ab").write(b"eHl6 400\n"), "sha256 differs"),
]


@pytest.mark.parametrize("case", range(len(TOKENIZER_FILE_CASES)))
def test_bad_tokenizer_files_get_one_line_errors(base, compressed, tmp_path, case):
    """Every JSON and ranks error names the file (and the field or line); nothing is unpickled."""
    change, msg = TOKENIZER_FILE_CASES[case]
    path = str(tmp_path / "t.json")
    tc.save_tokenizer(compressed[400], base, path)
    change(path)
    with pytest.raises(ValueError) as e:
        tc.load_tokenizer(path)
    assert msg in str(e.value) and "t.json" in str(e.value) or "t.tiktoken" in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_counts_file_is_loaded_without_pickle(base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "evil.npz", meta=np.array([Evil()], dtype=object), counts=np.zeros(3))
    with pytest.raises(ValueError, match="evil.npz is not a counts file.*Object arrays cannot be loaded"):
        tc.load_counts(str(tmp_path / "evil.npz"), base)
    assert not os.path.exists(tmp_path / "PWNED")


def cli_cases(synth, tmp):
    """(arguments, files that must stay byte for byte, expected one-line error or None: success)."""
    out, tok = str(tmp / "t.json"), str(tmp / "tok")
    utf16, nul = tmp / "u16.txt", tmp / "nul.txt"
    utf16.write_bytes("Some text.\nMore text.\n".encode("utf-16"))
    nul.write_bytes("Some text.\nMore text.\n".encode("utf-16").decode("latin1").encode())  # iconv -f latin1
    return [
        ([f"--out={out}", "--vocab=300"], [out], "write elsewhere with --out=PATH, or replace it with --overwrite"),
        ([f"--out={out}", "--vocab=400"], [out], None),                        # the same result: kept as is
        ([f"--out={tmp}", "--vocab=400"], [out], f"--out={tmp} must end in .json"),
        ([f"--out={tmp / 'd.json'}", "--vocab=400"], [out], "d.json is a folder"),
        ([f"--out_dir={out}", "--vocab=400"], [out], f"--out_dir={out} is a file, not a folder"),
        ([f"--out={synth / 'part0.txt'}"], [out], "must end in .json"),
        ([f"--input={out}", f"--out={out}"], [out], "is an input of this run"),
        ([f"--input={utf16}"], [out], "iconv -f UTF-16 -t UTF-8"),
        ([f"--input={nul}"], [out], "looks like UTF-16 (or binary)"),
    ]


@pytest.mark.slow                      # end to end: the command line, case after case
def test_cli_never_destroys_a_tokenizer_and_errors_are_one_line(synth_dir, tmp_path, capsys, monkeypatch):
    """Issue 25: a rerun never rewrites a tokenizer that checkpoints may need; bad paths and inputs get one line."""
    (tmp_path / "tok").mkdir()
    (tmp_path / "d.json").mkdir()
    base_args = [f"--input={synth_dir}", f"--out_dir={tmp_path / 'tok'}", "--sizes=400"]
    tc.main(base_args + [f"--out={tmp_path / 't.json'}", "--vocab=400"])
    for args, kept, msg in cli_cases(synth_dir, tmp_path):
        before = {p: open(p, "rb").read() for p in kept + [p[:-5] + ".tiktoken" for p in kept]}
        if msg is None:
            tc.main(base_args + args)
            assert "kept the identical" in capsys.readouterr().out
        else:
            with pytest.raises(SystemExit) as e:
                tc.main(base_args + args)
            assert str(e.value).startswith("tokenizer_compress.py: error: ") and msg in str(e.value), (args, e.value)
            assert "\n" not in str(e.value)
        assert all(open(p, "rb").read() == b for p, b in before.items()), args     # byte for byte
    # --overwrite replaces; the default name carries every option that changes the result
    tc.main(base_args + [f"--out={tmp_path / 't.json'}", "--vocab=300", "--overwrite"])
    assert tc.load_tokenizer(str(tmp_path / "t.json")).n_vocab == 301
    for extra in ([], ["--merge_closure=false"], ["--val_every=5"]):
        tc.main(base_args + ["--vocab=400"] + extra)
    assert sorted(f for f in os.listdir(tmp_path / "tok") if f.endswith(".json") and "-4" in f) == [
        "synth-400-every5.json", "synth-400-plain.json", "synth-400.json"]
    # Ctrl-C: one line, not a traceback
    monkeypatch.setattr(tc, "count_corpus", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(SystemExit, match=r"^tokenizer_compress.py: interrupted; no tokenizer written"):
        tc.main(base_args + ["--recount"])


def test_next_command_quotes_paths_with_spaces(docs, tmp_path, capsys):
    spaced = tmp_path / "my corpus"
    spaced.mkdir()
    (spaced / "a.txt").write_text(SEP.join(docs[:20]))
    tc.main([f"--input={spaced}", f"--out_dir={tmp_path / 'tok'}", "--sizes=300", "--vocab=300"])
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("next: ")][0]
    assert shlex.split(line[len("next: "):]) == ["python", "data/prepare.py",
                                                 f"--tokenizer={tmp_path / 'tok' / 'my corpus-300.json'}", f"--input={spaced}"]
