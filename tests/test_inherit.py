"""inherit.py: parameter inheritance (paper, Parameter Inheritance; ../shared/PAPER.md §3). Identity into the
source's own shape, what each layer strategy and width metric keeps (heads by all their projections, Taylor as the
first-order loss change of removing a unit), calibration on the train split only, the gain over random init on
real (tiny, repetitive) text, vocabulary slicing, the clear errors, files never destroyed, and the join with
train.py --init_from."""
import json
import math
import os
import shlex
import shutil
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import inherit
import train
import tokenizer_compress as tc
from conftest import make_shards
from model import ModelConfig, Transformer, load_checkpoint, load_model, model_config, padded_vocab, save_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--calib_batches=2", "--eval_batches=1", "--batch_size=2", "--seq_len=16", "--mask_steps=5"]


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py: tiny models run on one thread


@pytest.fixture(scope="module")
def data(four_lines):
    return four_lines                                   # tests/conftest.py: built once a run


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A 4-layer source trained for a few seconds: it knows the corpus well."""
    out = tmp_path_factory.mktemp("src")
    train.main([f"--data={data}", f"--out_dir={out}", "--n_layer=4", "--n_embd=64", "--n_head=4", "--block_size=32",
                "--batch_size=8", "--max_iters=100", "--warmup_iters=10", "--eval_interval=100", "--eval_iters=2",
                "--log_interval=50", "--sample_tokens=0", "--lr=1e-2"])
    ckpt = torch.load(out / "ckpt.pt", weights_only=False)       # what inherit.py reads, as plain data
    save_checkpoint({k: ckpt[k] for k in ("model", "model_config", "tokenizer")}, str(out / "source.pt"))
    return str(out / "source.pt")


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
    save_checkpoint({"model": model.state_dict(), "model_config": asdict(cfg), "tokenizer": meta["tokenizer"]},
                    str(path))
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


# uniform spreads over the whole depth, both ends included: round half up of i*(L-1)/(n-1) (7/3 -> 0, 2.33, 4.67, 7;
# 7/2 -> 0, 3.5, 7). It used to be i*L//n, which never kept the last layer.
@pytest.mark.parametrize("layers, n, expected", [("first", 4, [0, 1, 2, 3]), ("last", 4, [4, 5, 6, 7]),
                                                  ("uniform", 4, [0, 2, 5, 7]), ("edges", 4, [0, 1, 6, 7]),
                                                  ("uniform", 3, [0, 4, 7]), ("edges", 3, [0, 1, 7]),
                                                  ("uniform", 2, [0, 7]), ("uniform", 1, [0]),
                                                  ("7,0,3", 3, [0, 3, 7])])
def test_layer_strategies_keep_the_documented_layers(data, tmp_path, layers, n, expected):
    src = random_source(data, tmp_path / "src.pt", n_layer=8, n_embd=16, n_head=2, n_kv_head=0)
    sd = torch.load(src, weights_only=False)["model"]
    out = run(src, data, tmp_path / "s.pt", f"--layers={layers}", f"--n_layer={n}", "--width=l1")
    assert out["inherited_from"]["layers"] == expected and out["model_config"]["n_layer"] == n
    for j, l in enumerate(expected):                  # the weights really come from those layers
        assert torch.equal(out["model"][f"layers.{j}.ffn.up_proj.weight"], sd[f"layers.{l}.ffn.up_proj.weight"])


@pytest.mark.slow                      # end to end: a source trained first (the `trained` fixture)
def test_importance_keeps_the_layers_that_matter(data, trained, tmp_path):
    ckpt = load_checkpoint(trained)
    for l in (1, 2):                  # layers 1 and 2 now add nothing to the residual stream: skipping one changes
        ckpt["model"][f"layers.{l}.attn.o_proj.weight"].zero_()     # nothing, skipping layer 0 or 3 does
        ckpt["model"][f"layers.{l}.ffn.down_proj.weight"].zero_()
    save_checkpoint(ckpt, str(tmp_path / "src.pt"))
    out = run(tmp_path / "src.pt", data, tmp_path / "s.pt", "--layers=importance", "--n_layer=2")
    assert out["inherited_from"]["layers"] == [0, 3]


@pytest.mark.slow                      # end to end: a source trained first (the `trained` fixture)
def test_learnable_reaches_the_requested_sizes_exactly(data, trained, tmp_path):
    out = run(trained, data, tmp_path / "s.pt", "--width=learnable", "--n_layer=3", "--n_embd=48", "--ffn_ratio=1.5")
    c = out["model_config"]
    assert (c["n_layer"], c["n_embd"], c["n_head"]) == (3, 48, 3)      # whole heads of 16: 48 / 16
    sd = out["model"]
    assert sd["tok_emb.weight"].shape == (320, 48) and sd["layers.2.attn.q_proj.weight"].shape == (48, 48)
    assert sd["layers.0.ffn.gate_proj.weight"].shape == (128, 48)      # 1.5 * 48 = 72 -> multiple of 64 = 128


def test_learnable_masks_say_they_are_this_projects_method():
    doc = " ".join(inherit.learnable_scores.__doc__.split())
    assert "THIS PROJECT'S OWN METHOD" in doc and "not published" in doc
    assert all(w in doc for w in ("Sheared-LLaMA", "hard-concrete", "Lagrangian", "trains the weights alongside"))


# ---- heads are scored by every projection they own (issue 20) ------------------------------------------------
def kept_channels(student_sd, source_sd):
    """The source channel of each student channel, found by matching embedding columns."""
    src, emb = source_sd["tok_emb.weight"], student_sd["tok_emb.weight"]
    return [next(c for c in range(src.size(1)) if torch.equal(src[:, c], emb[:, j])) for j in range(emb.size(1))]


@pytest.mark.parametrize("n_kv_head, boosted_heads", [(0, [1, 3]), (2, [2, 3])])
def test_heads_and_kv_groups_are_scored_by_their_k_and_v_rows_too(data, tmp_path, n_kv_head, boosted_heads):
    """The boosted heads (MHA), or the kv group of heads 2 and 3 (GQA, groups {0,1} {2,3}), have small q rows and
    o columns but large k and v rows: l1 keeps them. A score of q rows + o columns alone dropped them."""
    src = random_source(data, tmp_path / "src.pt", n_kv_head=n_kv_head)        # 3 layers, 4 heads of D = 8
    ckpt, D = load_checkpoint(src), 8
    for l in range(3):
        w = lambda name: ckpt["model"][f"layers.{l}.attn.{name}_proj.weight"]
        for h in boosted_heads:
            w("q")[h * D:(h + 1) * D] *= 0.1
            w("o")[:, h * D:(h + 1) * D] *= 0.1
        for j in sorted({h if n_kv_head == 0 else h // 2 for h in boosted_heads}):
            w("k")[j * D:(j + 1) * D] *= 10
            w("v")[j * D:(j + 1) * D] *= 10
    save_checkpoint(ckpt, src)
    out = run(src, data, tmp_path / "s.pt", "--width=l1", "--layers=first", "--n_embd=16", "--n_head=2")
    ch = kept_channels(out["model"], ckpt["model"])
    rows = [h * D + i for h in boosted_heads for i in range(D)]
    for l in range(3):
        q = ckpt["model"][f"layers.{l}.attn.q_proj.weight"]
        assert torch.equal(out["model"][f"layers.{l}.attn.q_proj.weight"], q[rows][:, ch])


def test_a_kv_group_score_counts_each_projection_once():
    """unit_sums against sums written out by hand: head h = |q rows| + |o columns|; group j = its heads + |k rows| +
    |v rows| of kv head j (once, not once per query head)."""
    torch.manual_seed(0)
    cfg = model_config("tiny", n_layer=1, n_embd=32, n_head=4, n_kv_head=2, block_size=16, vocab_size=64)
    model = Transformer(cfg)
    sums = inherit.unit_sums({k: p.detach().abs() for k, p in model.named_parameters()}, cfg)
    q, k, v, o = (getattr(model.layers[0].attn, f"{x}_proj").weight.detach().abs() for x in "qkvo")
    head = [q[8 * h:8 * h + 8].sum() + o[:, 8 * h:8 * h + 8].sum() for h in range(4)]
    group = [head[2 * j] + head[2 * j + 1] + k[8 * j:8 * j + 8].sum() + v[8 * j:8 * j + 8].sum() for j in range(2)]
    torch.testing.assert_close(sums["heads"][0], torch.stack(head))
    torch.testing.assert_close(sums["groups"][0], torch.stack(group))


# ---- Taylor: |sum over a unit of w * dL/dw|, the gradient taken over all calibration batches (issue 20) --------
def test_taylor_is_the_first_order_loss_change_of_removing_a_unit(data):
    torch.manual_seed(0)
    cfg = model_config("tiny", n_layer=2, n_embd=32, n_head=4, n_kv_head=2, block_size=32, vocab_size=320)
    tok = json.load(open(os.path.join(data, "meta.json")))["tokenizer"]
    model, calib = Transformer(cfg), inherit.Calib(data, tok, 16, 4, seed=0)
    args = type("Args", (), {"calib_batches": 3})
    scores = inherit.taylor_scores(model, calib, None, args)
    batches = list(calib.batches(3, "score", "the same batches"))
    mean_loss = lambda: sum(model(x, y)[1] for x, y in batches) / 3
    ffn = model.layers[1].ffn
    gate, up, down = ffn.gate_proj.weight, ffn.up_proj.weight, ffn.down_proj.weight
    loss = mean_loss()
    g_gate, g_up, g_down = torch.autograd.grad(loss, [gate, up, down])
    signed = ((gate * g_gate).sum(1) + (up * g_up).sum(1) + (down * g_down).sum(0)).detach()     # (F,)
    torch.testing.assert_close(scores["neurons"][1], signed.abs())
    elementwise = ((gate * g_gate).abs().sum(1) + (up * g_up).abs().sum(1) + (down * g_down).abs().sum(0)).detach()
    assert set(signed.abs().topk(32).indices.tolist()) != set(elementwise.topk(32).indices.tolist())  # they differ
    # what the estimate means: zeroing neuron i changes the loss by about -signed[i]. Here by about a third of it:
    # a SwiGLU neuron's output is a product of its three weights, so to first order it counts three times;
    # the ranking is what matters.
    actual = []
    with torch.no_grad():
        for i in range(0, 128, 8):
            saved = gate[i].clone(), up[i].clone(), down[:, i].clone()
            gate[i], up[i], down[:, i] = 0, 0, 0
            actual.append(mean_loss().item() - loss.item())
            gate[i], up[i], down[:, i] = saved
    estimate = -signed[::8]
    assert torch.corrcoef(torch.stack([estimate, torch.tensor(actual)]))[0, 1] > 0.95


# ---- calibration never looks at evaluation data (issue 20) ------------------------------------------------------
def test_calibration_uses_only_the_end_of_the_train_split(data, tmp_path):
    folder = tmp_path / "positions"                     # a train.bin whose tokens are their own positions
    folder.mkdir()
    np.arange(20_000, dtype=np.uint16).tofile(folder / "train.bin")
    tok = {"name": "positions", "sha256": "0" * 64}
    json.dump({"dtype": "uint16", "tokenizer": tok}, open(folder / "meta.json", "w"))
    calib = inherit.Calib(str(folder), tok, 16, 8, seed=0)
    x = torch.cat([torch.cat([x, y[:, -1:]], 1) for stream in inherit.STREAMS
                   for x, y in calib.batches(10, stream, stream)])
    assert x.min() >= 19_000 and torch.equal(x[:, 1:] - x[:, :-1], torch.ones(len(x), 16, dtype=torch.long))
    # the whole procedure with no val.bin at all: no choice and no printed loss can have read it
    no_val = tmp_path / "no_val"
    shutil.copytree(data, no_val)
    os.remove(no_val / "val.bin")
    src = random_source(data, tmp_path / "src.pt")
    for layers, width in (("importance", "taylor"), ("importance", "activation"), ("importance", "learnable")):
        out = run(src, no_val, tmp_path / f"{width}.pt", f"--layers={layers}", f"--width={width}", "--n_layer=2",
                  "--n_embd=16")
        assert out["model_config"]["n_layer"] == 2


# ---- on real text: every informed criterion starts below a random init of the same shape -------------------
@pytest.mark.slow                      # end to end: a source trained first (the `trained` fixture)
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
    save_checkpoint({"model": model.state_dict(), "model_config": asdict(cfg),
                     "tokenizer": tc.tokenizer_identity(base)},
                    str(tmp_path / "base.pt"))
    out = run(tmp_path / "base.pt", shards, tmp_path / "sliced.pt", f"--tokenizer={tmp_path / 'tok.json'}")
    assert out["tokenizer"] == tc.tokenizer_identity(enc)
    assert out["model_config"]["vocab_size"] == padded_vocab(enc.n_vocab)
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
    (["--ffn_ratio=5"], r"ffn_hidden \(192\) is larger"),
    (["--n_embd=24", "--n_head=5"], "not divisible by n_head=5"),
    (["--n_embd=16", "--n_head=4"], r"head size 4 \(n_embd/n_head\) is not the source's 8; use --n_head=2"),
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


def test_errors_are_one_line(data, tmp_path, capsys, script):
    src = random_source(data, tmp_path / "src.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    meta = json.load(open(os.path.join(data, "meta.json")))
    meta["tokenizer"].update(sha256="f" * 64, name="other")
    (tmp_path / "other").mkdir()
    json.dump(meta, open(tmp_path / "other" / "meta.json", "w"))
    torch.save({**load_checkpoint(src), "tokenizer": tc.tokenizer_identity(tc.load_tokenizer("cl100k_base"))},
               tmp_path / "cl100k.pt")
    cases = [([f"--src={tmp_path / 'missing.pt'}"], "missing.pt not found"),
             ([f"--src={tmp_path / 'foreign.pt'}"], "not a nanopangu checkpoint"),
             ([f"--src={tmp_path / 'text.pt'}"], "text.pt"),          # model.load_checkpoint's wording
             ([f"--src={src}", f"--tokenizer={meta['tokenizer']['source']}"],      # from cl100k, not from 'tok'
              "was compressed from 'cl100k_base', but the source model uses 'tok'"),
             ([f"--src={tmp_path / 'cl100k.pt'}", f"--tokenizer={meta['tokenizer']['source']}"],
              "320 embedding rows, fewer than the 100,277 ids"),
             ([f"--src={src}", f"--tokenizer={tmp_path / 'nothing.json'}"], "not found"),
             ([f"--src={src}", f"--calib={tmp_path / 'other'}"], "made with tokenizer 'other', the student uses 'tok'"),
             ([f"--src={src}", f"--calib={tmp_path}"], "meta.json not found"),
             ([f"--src={src}", "--calib_batches=0"], "must be at least 1"),
             ([f"--src={src}", "--seq_len=64"], "is over the source's context 32")]
    for args, msg in cases:
        with pytest.raises(SystemExit) as e:
            inherit.main([f"--out={tmp_path / 's.pt'}", f"--calib={data}", *FAST, *args])
        assert str(e.value).startswith("inherit.py: error: ") and msg in str(e.value) and "\n" not in str(e.value), args
    # as a command: stderr is that one line; --help lists every option with its default
    r = script("inherit.py", f"--src={tmp_path / 'foreign.pt'}", f"--out={tmp_path / 's.pt'}", f"--calib={data}")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not a nanopangu checkpoint" in r.stderr, r.stderr
    capsys.readouterr()
    with pytest.raises(SystemExit):
        inherit.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(f"--{k}" in help_text for k in ("layers", "width", "tokenizer", "mask_steps", "n_kv_head", "calib",
                                                "preset", "overwrite", "trust_checkpoint"))
    assert "(default: edges)" in help_text and "(default: taylor)" in help_text
    assert not os.path.exists(tmp_path / "s.pt")


# ---- never destroy a file, refuse bad options before any work (issue 25) -------------------------------------------
def test_files_are_never_destroyed_and_bad_options_get_one_line(data, tmp_path, monkeypatch):
    src = random_source(data, tmp_path / "src.pt")
    (tmp_path / "earlier.pt").write_bytes(b"an earlier student")
    (tmp_path / "a_file").write_text("not a folder")
    files = {path: open(path, "rb").read() for path in (src, tmp_path / "earlier.pt", os.path.join(data, "train.bin"))}
    cases = [([f"--out={src}"], "is one of this run's inputs"),
             ([f"--out={src}", "--overwrite"], "is one of this run's inputs"),
             ([f"--out={os.path.join(data, 'train.bin')}", "--overwrite"], "is one of this run's inputs"),
             ([f"--out={tmp_path / 'earlier.pt'}"], "exists; name a new file or add --overwrite"),
             ([f"--out={tmp_path}"], "is a directory"),
             ([f"--out={tmp_path / 'a_file' / 'sub' / 's.pt'}"], "a_file is a file"),
             (["--mask_t0=0"], "--mask_t0=0.0 must be positive"),
             (["--mask_t1=-1"], "--mask_t1=-1.0 must be positive"),
             (["--mask_lr=nan"], "--mask_lr=nan must be positive"),
             (["--ffn_ratio=0"], "--ffn_ratio=0.0 must be positive"),
             (["--mask_steps=0"], "--mask_steps=0 must be at least 1"),
             (["--batch_size=-2"], "--batch_size=-2 must be at least 1"),
             (["--seq_len=-1"], "--seq_len=-1 must be at least 0"),
             (["--n_head=0"], "--n_head=0 must be at least 1"),
             (["--n_kv_head=-1"], "--n_kv_head=-1 must be at least 0"),
             (["--seed=-1"], "--seed=-1 must be at least 0"),
             (["--n_layer=0"], "n_layer must be positive")]
    for args, msg in cases:                       # a later --out replaces the first
        with pytest.raises(SystemExit) as e:
            inherit.main([f"--src={src}", f"--calib={data}", f"--out={tmp_path / 'new.pt'}", *FAST, *args])
        text = str(e.value)
        assert text.startswith("inherit.py: error: ") and msg in text and "\n" not in text, (args, text)
        assert "--init_from" not in text and "--out_dir" not in text       # train.py's options, not ours
    assert all(open(path, "rb").read() == before for path, before in files.items())
    assert not os.path.exists(tmp_path / "new.pt")
    run(src, data, tmp_path / "earlier.pt", "--overwrite")                 # replacing on purpose works
    assert load_model(str(tmp_path / "earlier.pt"))[1]["inherited_from"]["width"] == "taylor"
    # Ctrl-C: one line, and nothing written
    monkeypatch.setattr(inherit, "choose_layers", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(SystemExit, match="^inherit.py: interrupted before the student was saved; nothing was written$"):
        run(src, data, tmp_path / "new.pt")
    assert not os.path.exists(tmp_path / "new.pt")


class Evil:
    """A pickle payload: unpickling calls os.system (the attack issue 24 describes)."""
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"echo pwned > {shlex.quote(self.sentinel)}",)


def test_a_malicious_source_checkpoint_never_runs(data, tmp_path):
    sentinel = str(tmp_path / "SENTINEL")
    torch.save({"model": {}, "model_config": {}, "x": Evil(sentinel)}, tmp_path / "evil.pt")
    with pytest.raises(SystemExit) as e:
        run(tmp_path / "evil.pt", data, tmp_path / "s.pt")
    assert not os.path.exists(sentinel) and not os.path.exists(tmp_path / "s.pt")
    assert str(e.value).startswith("inherit.py: error: ") and "--trust_checkpoint" in str(e.value)
    assert "\n" not in str(e.value)


# ---- the workflow join: train.py starts from the inherited checkpoint ------------------------------------------
def test_inherited_checkpoint_trains_with_train_py(data, trained, tmp_path):
    run(trained, data, tmp_path / "init.pt", "--n_layer=2", "--n_embd=32", "--width=taylor")
    start = val_loss(load_model(str(tmp_path / "init.pt"))[0], data)
    train.main([f"--data={data}", f"--out_dir={tmp_path / 'out'}", f"--init_from={tmp_path / 'init.pt'}",
                "--batch_size=8",
                "--max_iters=20", "--warmup_iters=2", "--eval_interval=20", "--eval_iters=2", "--log_interval=10",
                "--sample_tokens=0", "--lr=3e-3"])
    ckpt = torch.load(tmp_path / "out" / "ckpt.pt", weights_only=False)     # train.py's checkpoint, its business
    assert ckpt["model_config"]["n_layer"] == 2 and ckpt["model_config"]["n_embd"] == 32 and ckpt["step"] == 20
    trained_student = Transformer(ModelConfig(**ckpt["model_config"]))
    trained_student.load_state_dict(ckpt["model"])
    assert val_loss(trained_student, data) < start
