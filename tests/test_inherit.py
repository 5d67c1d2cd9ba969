"""inherit.py: parameter inheritance (paper §3.3). Identity into the source's own shape, what each layer strategy
and width metric keeps, the gain over random init on real (tiny, repetitive) text, vocabulary slicing, the clear
errors, and the join with train.py --init_from."""
import json
import math
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import inherit
import train
import tokenizer_compress as tc
from conftest import make_shards
from model import ModelConfig, Transformer, load_model, model_config, padded_vocab, save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--calib_batches=2", "--eval_batches=1", "--batch_size=2", "--seq_len=16", "--mask_steps=5"]
LINES = ["To be, or not to be, that is the question.", "All the world's a stage.",
         "Now is the winter of our discontent.", "What's in a name? A rose by any other name."]


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py: tiny models run on one thread


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    docs = ["\n".join(LINES[(i + j) % 4] for j in range(40)) for i in range(12)]
    return make_shards(tmp_path_factory.mktemp("corpus"), docs, K=300)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A 4-layer source trained for a few seconds: it knows the corpus well."""
    out = tmp_path_factory.mktemp("src")
    train.main([f"--data={data}", f"--out_dir={out}", "--n_layer=4", "--n_embd=64", "--n_head=4", "--block_size=32",
                "--batch_size=8", "--max_iters=100", "--warmup_iters=10", "--eval_interval=100", "--eval_iters=2",
                "--log_interval=50", "--sample_tokens=0", "--lr=1e-2"])
    return str(out / "ckpt.pt")


def random_source(data, path, seed=0, **shape):
    """An untrained source checkpoint (what identity and selection tests need) with the data's tokenizer."""
    meta = json.load(open(os.path.join(data, "meta.json")))
    torch.manual_seed(seed)
    cfg = model_config("tiny", **{"n_layer": 3, "n_embd": 32, "n_head": 4, "n_kv_head": 2, "block_size": 32,
                                  "vocab_size": 320, **shape})
    model = Transformer(cfg)
    with torch.no_grad():                      # norms away from 1, so channel selection and slicing show
        for n, p in model.named_parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    save_checkpoint({"model": model.state_dict(), "model_config": asdict(cfg), "tokenizer": meta["tokenizer"]}, str(path))
    return str(path)


def run(src, data, out, *args):
    return inherit.main([f"--src={src}", f"--out={out}", f"--calib={data}", *FAST, *args])


def val_loss(model, data, T=32):
    """Mean loss on consecutive windows of the whole val split, computed here (not with inherit.py's code)."""
    meta = json.load(open(os.path.join(data, "meta.json")))
    tok = np.fromfile(os.path.join(data, "val.bin"), dtype=meta["dtype"]).astype(np.int64)
    x = torch.from_numpy(np.stack([tok[i * T:i * T + T + 1] for i in range((len(tok) - 1) // T)]))
    with torch.no_grad():
        return F.cross_entropy(model.eval()(x[:, :-1])[0].flatten(0, 1), x[:, 1:].flatten()).item()


# ---- identity: the source's own shape gives the source back, whatever the criterion -----------------------
@pytest.mark.parametrize("layers", inherit.LAYER_STRATEGIES)
def test_identity_into_the_sources_own_shape(data, tmp_path, layers):
    src = random_source(data, tmp_path / "src.pt")
    source, ckpt = load_model(src)
    x = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    for width in inherit.WIDTH_METRICS:
        out = run(src, data, tmp_path / f"{width}.pt", f"--layers={layers}", f"--width={width}")
        assert out["model_config"] == ckpt["model_config"] and out["tokenizer"] == ckpt["tokenizer"]
        student, _ = load_model(str(tmp_path / f"{width}.pt"))
        with torch.no_grad():
            torch.testing.assert_close(student(x)[0], source(x)[0], rtol=1e-5, atol=1e-5)


# ---- each criterion keeps what it says ---------------------------------------------------------------------
def test_l2_keeps_the_top_neurons_by_l2_norm(data, tmp_path):
    src = random_source(data, tmp_path / "src.pt", n_kv_head=0)
    sd = torch.load(src, weights_only=False)["model"]
    out = run(src, data, tmp_path / "s.pt", "--width=l2", "--ffn_ratio=1", "--layers=first")   # FFN 128 -> 64
    for l in range(3):
        gate, up, down = (sd[f"layers.{l}.ffn.{k}_proj.weight"] for k in ("gate", "up", "down"))
        norm = torch.cat([gate, up, down.T], 1).norm(dim=1)                          # (F,): one neuron's weights
        kept = norm.topk(64).indices.sort().values
        assert torch.equal(out["model"][f"layers.{l}.ffn.gate_proj.weight"], gate[kept])
        assert torch.equal(out["model"][f"layers.{l}.ffn.down_proj.weight"], down[:, kept])
        assert not torch.equal(kept, torch.arange(64))                               # not trivially the first 64


@pytest.mark.parametrize("layers, n, expected", [("first", 4, [0, 1, 2, 3]), ("last", 4, [4, 5, 6, 7]),
                                                  ("uniform", 4, [0, 2, 4, 6]), ("edges", 4, [0, 1, 6, 7]),
                                                  ("uniform", 3, [0, 2, 5]), ("edges", 3, [0, 1, 7]),
                                                  ("7,0,3", 3, [0, 3, 7])])
def test_layer_strategies_keep_the_documented_layers(data, tmp_path, layers, n, expected):
    src = random_source(data, tmp_path / "src.pt", n_layer=8, n_embd=16, n_head=2, n_kv_head=0)
    sd = torch.load(src, weights_only=False)["model"]
    out = run(src, data, tmp_path / "s.pt", f"--layers={layers}", f"--n_layer={n}", "--width=l1")
    assert out["inherited_from"]["layers"] == expected and out["model_config"]["n_layer"] == n
    for j, l in enumerate(expected):                  # the weights really come from those layers
        assert torch.equal(out["model"][f"layers.{j}.ffn.up_proj.weight"], sd[f"layers.{l}.ffn.up_proj.weight"])


def test_importance_keeps_the_layers_that_matter(data, trained, tmp_path):
    ckpt = torch.load(trained, weights_only=False)
    ckpt["model"]["layers.2.attn.o_proj.weight"].zero_()      # layer 2 now adds nothing to the residual stream:
    ckpt["model"]["layers.2.ffn.down_proj.weight"].zero_()    # skipping it changes nothing, skipping any other does
    torch.save(ckpt, tmp_path / "src.pt")
    out = run(tmp_path / "src.pt", data, tmp_path / "s.pt", "--layers=importance", "--n_layer=3")
    assert out["inherited_from"]["layers"] == [0, 1, 3]


def test_learnable_reaches_the_requested_sizes_exactly(data, trained, tmp_path):
    out = run(trained, data, tmp_path / "s.pt", "--width=learnable", "--n_layer=3", "--n_embd=48", "--ffn_ratio=1.5")
    c = out["model_config"]
    assert (c["n_layer"], c["n_embd"], c["n_head"]) == (3, 48, 3)      # whole heads of 16: 48 / 16
    sd = out["model"]
    assert sd["tok_emb.weight"].shape == (320, 48) and sd["layers.2.attn.q_proj.weight"].shape == (48, 48)
    assert sd["layers.0.ffn.gate_proj.weight"].shape == (128, 48)      # 1.5 * 48 = 72 -> multiple of 64 = 128


# ---- on real text: every informed criterion starts below a random init of the same shape -------------------
def test_inherited_students_start_better_than_random_init(data, trained, tmp_path):
    torch.manual_seed(0)
    shape = ["--n_layer=2", "--n_embd=32", "--ffn_ratio=2"]
    losses = {}
    for width in inherit.WIDTH_METRICS:
        out = run(trained, data, tmp_path / f"{width}.pt", *shape, f"--width={width}", "--layers=edges",
                  "--mask_steps=60", "--seq_len=32", "--batch_size=4")
        losses[width] = val_loss(load_model(str(tmp_path / f"{width}.pt"))[0], data)
    cfg = ModelConfig(**out["model_config"])
    scratch = val_loss(Transformer(cfg), data)
    source = val_loss(load_model(trained)[0], data)
    print(f"source {source:.3f}, random init {scratch:.3f}, inherited {losses}")
    assert math.isclose(scratch, math.log(300), rel_tol=0.05)          # a random init knows nothing
    for width, loss in losses.items():
        assert width == "random" or loss < scratch - 0.5, (width, loss, scratch)
    assert source < min(losses.values())


# ---- tokens: slicing to a compressed tokenizer keeps the kept tokens' logits ---------------------------------
@pytest.mark.parametrize("tie", [False, True])
def test_vocabulary_slicing_keeps_logits(tmp_path, tie):
    import regex
    rng = np.random.default_rng(0)
    syllables = ["ka", "ro", "mi", "sel", "tan", "vor", "qu", "ith", "ber", "lo", "un", "dra", "pe", "zul", "ost"]
    words = ["".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(300)] + ["the", "and", "king", "night"]
    docs = [" ".join(rng.choice(words, 400)) for _ in range(12)]
    shards = make_shards(tmp_path, docs, K=600)                      # compressed from cl100k_base: 601 ids
    base, enc = tc.load_tokenizer("cl100k_base"), tc.load_tokenizer(str(tmp_path / "tok.json"))
    torch.manual_seed(0)
    cfg = model_config("tiny", n_layer=1, n_embd=32, n_head=2, vocab_size=100_288, block_size=64, tie_embeddings=tie)
    model = Transformer(cfg).eval()
    save_checkpoint({"model": model.state_dict(), "model_config": asdict(cfg), "tokenizer": tc.tokenizer_identity(base)},
                    str(tmp_path / "base.pt"))
    out = run(tmp_path / "base.pt", shards, tmp_path / "sliced.pt", f"--tokenizer={tmp_path / 'tok.json'}")
    assert out["tokenizer"] == tc.tokenizer_identity(enc) and out["model_config"]["vocab_size"] == padded_vocab(enc.n_vocab)
    sliced, _ = load_model(str(tmp_path / "sliced.pt"))
    # text that encodes identically under both tokenizers: words (pieces " word") whose tokens were all kept
    same = [p for p in regex.findall(base._pat_str, docs[0]) if p[:1] == " " and p[1:].isalpha()
            and [enc.new_to_old[i] for i in enc.encode_ordinary(p)] == base.encode_ordinary(p)]
    text = "".join(same[:48])
    new_ids, old_ids = enc.encode_ordinary(text), base.encode_ordinary(text)
    assert len(old_ids) >= 40 and [enc.new_to_old[i] for i in new_ids] == old_ids
    with torch.no_grad():
        old_logits = model(torch.tensor([old_ids]))[0][..., enc.new_to_old]
        new_logits = sliced(torch.tensor([new_ids]))[0][..., :enc.n_vocab]
    torch.testing.assert_close(new_logits, old_logits, rtol=1e-5, atol=1e-5)
    pad = out["model"]["lm_head.weight"][enc.n_vocab:]                # padding rows: the source's padding rows
    assert all(any(torch.equal(r, s) for s in model.lm_head.weight[base.n_vocab:]) for r in pad)


# ---- clear one-line errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, msg", [
    (["--n_layer=4"], r"student's n_layer \(4\) is larger than the source's \(3\)"),
    (["--n_embd=64", "--n_head=8"], r"n_embd \(64\) is larger"),
    (["--ffn_ratio=5"], r"FFN hidden size \(192\) is larger"),
    (["--n_embd=24", "--n_head=5"], "not divisible by n_head=5"),
    (["--n_embd=16", "--n_head=4"], r"head size n_embd/n_head = 16/4 = 4 differs from the source's 8; use --n_head=2"),
    (["--n_head=4", "--n_kv_head=1"], r"query heads per kv head \(4\) exceed the source's \(2\)"),
    (["--layers=0,0,1"], "give 3 different layer indices in 0..2"),
    (["--layers=0,5", "--n_layer=2"], "give 2 different layer indices in 0..2"),
    (["--layers=middle"], "choose first, last, uniform, edges, importance or a list"),
    (["--width=magnitude"], "choose one of random, l1"),
    (["--preset=huge"], "unknown --preset='huge'"),
])
def test_bad_targets_are_refused(data, tmp_path, args, msg):
    src = random_source(data, tmp_path / "src.pt")
    with pytest.raises(SystemExit, match="inherit.py: error: .*" + msg):
        run(src, data, tmp_path / "s.pt", *args)
    assert not os.path.exists(tmp_path / "s.pt")


def test_errors_are_one_line(data, tmp_path, capsys):
    src = random_source(data, tmp_path / "src.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    meta = json.load(open(os.path.join(data, "meta.json")))
    meta["tokenizer"].update(sha256="f" * 64, name="other")
    (tmp_path / "other").mkdir()
    json.dump(meta, open(tmp_path / "other" / "meta.json", "w"))
    torch.save({**torch.load(src, weights_only=False), "tokenizer": tc.tokenizer_identity(tc.load_tokenizer("cl100k_base"))},
               tmp_path / "cl100k.pt")
    cases = [([f"--src={tmp_path / 'missing.pt'}"], "missing.pt not found"),
             ([f"--src={tmp_path / 'foreign.pt'}"], "not a nanopangu checkpoint"),
             ([f"--src={tmp_path / 'text.pt'}"], "not a readable checkpoint"),
             ([f"--src={src}", f"--tokenizer={meta['tokenizer']['source']}"],      # compressed from cl100k, not from 'tok'
              "was compressed from 'cl100k_base', but the source model uses 'tok'"),
             ([f"--src={tmp_path / 'cl100k.pt'}", f"--tokenizer={meta['tokenizer']['source']}"],
              "320 embedding rows, fewer than the 100,277 ids"),
             ([f"--src={src}", f"--tokenizer={tmp_path / 'nothing.json'}"], "not found"),
             ([f"--src={src}", f"--calib={tmp_path / 'other'}"], "made with tokenizer 'other', the student uses 'tok'"),
             ([f"--src={src}", f"--calib={tmp_path}"], "meta.json not found"),
             ([f"--src={src}", "--calib_batches=0"], "must be at least 1"),
             ([f"--src={src}", "--seq_len=64"], "longer than the source's context (32)")]
    for args, msg in cases:
        with pytest.raises(SystemExit) as e:
            inherit.main([f"--out={tmp_path / 's.pt'}", f"--calib={data}", *FAST, *args])
        assert str(e.value).startswith("inherit.py: error: ") and msg in str(e.value) and "\n" not in str(e.value), args
    # as a command: stderr is that one line; --help lists every option with its default
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "inherit.py", f"--src={tmp_path / 'foreign.pt'}", f"--out={tmp_path / 's.pt'}",
                        f"--calib={data}"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not a nanopangu checkpoint" in r.stderr, r.stderr
    capsys.readouterr()
    with pytest.raises(SystemExit):
        inherit.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(f"--{k}" in help_text for k in ("layers", "width", "tokenizer", "mask_steps", "n_kv_head", "calib", "preset"))
    assert "(default: edges)" in help_text and "(default: taylor)" in help_text
    assert not os.path.exists(tmp_path / "s.pt")


# ---- the workflow join: train.py starts from the inherited checkpoint ------------------------------------------
def test_inherited_checkpoint_trains_with_train_py(data, trained, tmp_path):
    run(trained, data, tmp_path / "init.pt", "--n_layer=2", "--n_embd=32", "--width=taylor")
    start = val_loss(load_model(str(tmp_path / "init.pt"))[0], data)
    train.main([f"--data={data}", f"--out_dir={tmp_path / 'out'}", f"--init_from={tmp_path / 'init.pt'}", "--batch_size=8",
                "--max_iters=20", "--warmup_iters=2", "--eval_interval=20", "--eval_iters=2", "--log_interval=10",
                "--sample_tokens=0", "--lr=3e-3"])
    ckpt = torch.load(tmp_path / "out" / "ckpt.pt", weights_only=False)
    assert ckpt["model_config"]["n_layer"] == 2 and ckpt["model_config"]["n_embd"] == 32 and ckpt["step"] == 20
    assert val_loss(load_model(str(tmp_path / "out" / "ckpt.pt"))[0], data) < start
