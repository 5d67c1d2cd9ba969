# Tests of export.py: transformers' LlamaForCausalLM loads the export and computes our logits (MHA and GQA,
# tied and untied embeddings); the fast tokenizer built from tokenizer.json encodes held-out text exactly as
# our tiktoken encoding does (full cl100k_base, a merge-closed compact vocabulary and a plain top-K one with
# merge-unreachable tokens); one-line errors.
import gzip
import importlib
import inspect
import json
import os
import random
import sys
from dataclasses import asdict

import pytest
import regex
import torch

import export
import tokenizer_compress as tc
from model import Transformer, model_config, padded_vocab

transformers = pytest.importorskip("transformers", reason="transformers is a test/export dependency: pip install -r requirements-dev.txt")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Python's own sources: a fixed, varied corpus (prose, code, numbers) that needs no download.
TRAIN_MODULES = ["argparse", "textwrap", "difflib", "inspect", "typing"]
HELD_OUT_MODULES = ["calendar", "configparser", "string"]
HELD_OUT_EXTRA = ["Naïve café — 東京 and Zürich; ÀÉÎõü ß ﬁ. 你好，世界！这是一个测试。 Привет, мир!",
                  "emoji 👍🏽👨‍👩‍👧 flags 🇫🇷 e\u0301 \ufeff\x00\x7f \U0010ffff",
                  "I'LL say you'd've DON'T it's we're  they'VE \n\n\n   \t\t\r\n trailing   ",
                  "1234567 3.14159 0x1F 2026-11-23 $1,000,000 ... !!! ??? ''' \"\"\"",
                  "    def f(x):\n\t\treturn {'a': x**2}  # code\n\n\n", "   \n\n\t\t   \r\n  ", " ", ""]


def random_text(rng, n):
    pool = "ab xyzth ing  \n\t'éß你🙂0123.,!-_\"()" + "the quick brown fox "
    return "".join(rng.choice(pool) for _ in range(n))


@pytest.fixture(scope="module")
def held_out():
    rng = random.Random(0)
    texts = [inspect.getsource(importlib.import_module(m)) for m in HELD_OUT_MODULES] + HELD_OUT_EXTRA
    return texts + [random_text(rng, rng.randint(1, 200)) for _ in range(300)]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """{kind: tiktoken Encoding}: the base vocabulary and two compact ones saved as train.py would use them."""
    tmp = tmp_path_factory.mktemp("tok")
    base = tc.load_tokenizer("cl100k_base")
    table = tc.count_corpus(base, [inspect.getsource(importlib.import_module(m)) for m in TRAIN_MODULES], "py")
    out = {"cl100k_base": base}
    for kind, closure in (("closed", True), ("plain", False)):
        enc, _ = tc.compress(base, table, 3000, merge_closure=closure)
        out[kind] = tc.save_tokenizer(enc, base, str(tmp / f"py-{kind}.json"))
    assert tc.merge_unreachable(out["closed"]) == [] and len(tc.merge_unreachable(out["plain"])) > 0
    return out


def save_ckpt(path, model, enc):
    torch.save({"model": model.state_dict(), "model_config": asdict(model.config), "tokenizer": tc.tokenizer_identity(enc),
                "train_config": {}, "step": 1}, path)
    return str(path)


def random_model(enc, seed, **kw):
    """A small model whose weights are far from the init (which has near-uniform attention and unit norm
    weights, hiding mistakes in RoPE or the norms): every matrix N(0, 1/fan_in), norm weights in [0.5, 1.5].
    RoPE base and norm eps differ from transformers' defaults, so the config must carry them."""
    torch.manual_seed(seed)
    cfg = model_config("tiny", vocab_size=padded_vocab(enc.n_vocab), n_layer=2, n_embd=64, n_head=4, block_size=32,
                       rope_base=500.0, norm_eps=1e-3, **kw)
    model = Transformer(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, p.shape[1] ** -0.5)
            else:
                p.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("heads", [dict(n_kv_head=0, tie_embeddings=False),   # MHA
                                   dict(n_kv_head=2, tie_embeddings=False),   # GQA, 2 query heads per kv head
                                   dict(n_kv_head=1, tie_embeddings=True)],   # MQA, tied embeddings
                         ids=["mha", "gqa", "mqa-tied"])
def test_transformers_computes_our_logits(tokenizers, tmp_path, heads):
    enc = tokenizers["closed"]
    model = random_model(enc, seed=1, **heads)
    out = tmp_path / "hf"
    export.main([save_ckpt(tmp_path / "ckpt.pt", model, enc), str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == model.config.vocab_size > enc.n_vocab and config["bos_token_id"] == enc.eot_token
    hf, info = transformers.LlamaForCausalLM.from_pretrained(str(out), output_loading_info=True)
    assert not any(info.values()), info                          # no missing / unexpected / mismatched weights
    hf = hf.float().eval()
    idx = torch.randint(0, enc.n_vocab, (2, model.config.block_size), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = model(idx)[0], hf(idx).logits.float()
    diff = (ours - theirs).abs().max().item()
    print(f"max |logits ours - transformers| = {diff:.2e} ({heads}, logits std {ours.std():.2f})")
    assert ours.std() > 0.5 and diff <= 1e-4


@pytest.fixture(scope="module")
def fast_tokenizers(tokenizers, tmp_path_factory):
    """{kind: (transformers' fast tokenizer from export.hf_tokenizer, number of merges)}, each built when first
    asked for: cl100k_base's 100k merges take the most time, and only the slow lane asks for them."""
    class Built(dict):
        def __missing__(self, kind):
            path = tmp_path_factory.mktemp(kind) / "tokenizer.json"
            data = export.hf_tokenizer(tokenizers[kind])
            path.write_text(json.dumps(data, ensure_ascii=False))
            self[kind] = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path)), len(data["model"]["merges"])
            return self[kind]
    return Built()


@pytest.mark.parametrize("kind", [pytest.param("cl100k_base", marks=pytest.mark.slow), "closed", "plain"])
def test_fast_tokenizer_encodes_as_tiktoken(tokenizers, fast_tokenizers, held_out, kind):
    enc, (fast, n_merges) = tokenizers[kind], fast_tokenizers[kind]
    pieces = chars = 0
    for text in held_out:
        ids = enc.encode_ordinary(text)
        assert fast.encode(text, add_special_tokens=False) == ids, text[:80]
        assert fast.decode(ids, clean_up_tokenization_spaces=False) == text
        pieces += len(regex.findall(enc._pat_str, text))
        chars += len(text)
    # <|endoftext|> in the text: transformers reads it as the special token (tiktoken's allowed_special="all"),
    # or as plain text with split_special_tokens (tiktoken's encode_ordinary)
    s = "a<|endoftext|>b"
    assert fast.encode(s, add_special_tokens=False) == enc.encode(s, allowed_special="all") == [*enc.encode_ordinary("a"), enc.eot_token, *enc.encode_ordinary("b")]
    assert fast.encode(s, add_special_tokens=False, split_special_tokens=True) == enc.encode_ordinary(s)
    print(f"{kind}: {len(held_out)} texts, {pieces:,} pieces, {chars:,} characters identical; "
          f"{n_merges:,} merges, {len(tc.merge_unreachable(enc))} merge-unreachable tokens")
    assert pieces > 20_000


GUTENBERG = os.path.join(os.path.dirname(REPO), "shared", "data", "corpora", "gutenberg_children_val.txt.gz")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(GUTENBERG), reason=f"needs ../shared/data (CI has it): {GUTENBERG} not found")
def test_fast_tokenizer_on_real_text(tokenizers, fast_tokenizers):
    with gzip.open(GUTENBERG, "rt", encoding="utf-8") as f:
        text = f.read(300_000)                                  # children's books, Project Gutenberg
    for kind, enc in tokenizers.items():
        assert fast_tokenizers[kind][0].encode(text, add_special_tokens=False, split_special_tokens=True) == enc.encode_ordinary(text), kind


def test_export_directory_and_errors(tokenizers, tmp_path, capsys):
    enc = tokenizers["plain"]
    ckpt = save_ckpt(tmp_path / "ckpt.pt", random_model(enc, seed=3), enc)
    out = tmp_path / "hf"
    export.main([ckpt, str(out), "--dtype=bfloat16"])
    assert sorted(os.listdir(out)) == ["README.md", "config.json", "model.safetensors", "tokenizer.json",
                                       "tokenizer.tiktoken", "tokenizer_config.json"]
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    assert tok.encode("Hello world", add_special_tokens=False) == enc.encode_ordinary("Hello world")
    import tiktoken.load                                         # the README's recipe: tiktoken's own loader
    assert tiktoken.load.load_tiktoken_bpe(str(out / "tokenizer.tiktoken")) == enc._mergeable_ranks
    for args, msg in (([ckpt, str(out)], "exists and is not an empty folder; .* --force"),
                      ([str(tmp_path / "none.pt"), str(tmp_path / "x")], "checkpoint .* not found"),
                      ([str(tmp_path / "foreign.pt"), str(tmp_path / "x")], "not a nanopangu checkpoint"),
                      ([str(tmp_path / "notok.pt"), str(tmp_path / "x")], "records no tokenizer")):
        torch.save({"weights": 1}, tmp_path / "foreign.pt")
        torch.save({**torch.load(ckpt, weights_only=False), "tokenizer": None}, tmp_path / "notok.pt")
        with pytest.raises(SystemExit, match=f"export.py: error: .*{msg}"):
            export.main(args)
    with pytest.MonkeyPatch.context() as m:                     # an import of None raises ImportError
        m.setitem(sys.modules, "safetensors.torch", None)
        with pytest.raises(SystemExit, match="export.py: error: export needs safetensors: pip install"):
            export.main([ckpt, str(tmp_path / "x")])
    export.main([ckpt, str(out), "--force"])                     # --force: written again, now in float32
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "float32"
    assert not any(f.endswith(".tmp") for f in os.listdir(out))


def test_help_and_import_have_no_side_effects(capsys, script, tmp_path):
    with pytest.raises(SystemExit) as e:
        export.main(["--help"])
    assert e.value.code == 0 and "(default: float32)" in capsys.readouterr().out
    (tmp_path / "imports.py").write_text(f"import sys\nsys.path.insert(0, {REPO!r})\nimport export\n")
    done = script(tmp_path / "imports.py", cwd=tmp_path)                 # nothing printed, nothing written
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


class Evil:
    def __reduce__(self):                                       # what a full unpickle would call
        return os.system, (f"echo pwned > {os.environ['SENTINEL']}",)


def test_untrusted_pickle_never_runs_and_inputs_are_kept(tokenizers, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTINEL", str(tmp_path / "PWNED"))
    torch.save({"model": {}, "model_config": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(SystemExit) as e:
        export.main([str(tmp_path / "evil.pt"), str(tmp_path / "hf")])
    assert "--trust_checkpoint" in str(e.value.code) and "\n" not in str(e.value.code)
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "hf").exists()
    enc = tokenizers["plain"]                                  # OUT_DIR = the checkpoint's own folder: refused
    run = tmp_path / "run"
    run.mkdir()
    ckpt = save_ckpt(run / "ckpt.pt", random_model(enc, seed=1), enc)
    before = open(ckpt, "rb").read()
    with pytest.raises(SystemExit, match=r"export.py: error: .*run holds the checkpoint .*; export into another"):
        export.main([ckpt, str(run), "--force"])
    assert sorted(os.listdir(run)) == ["ckpt.pt"] and open(ckpt, "rb").read() == before
    monkeypatch.setattr(export, "export", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(SystemExit, match=r"^export.py: interrupted; .* run again with --force$"):
        export.main([ckpt, str(tmp_path / "x")])
