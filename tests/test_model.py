"""model.py: preset shapes and parameter counts, RoPE, causality, KV cache, chunked loss, kernel switch,
config and device checks, MFU peak."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import model
from model import PRESETS, KVCache, Transformer, apply_rope, model_config, ModelConfig


def count(name, **kw):
    with torch.device("meta"):                       # no memory: shapes only
        return Transformer(model_config(name, **kw)).param_count()


def test_pangu_1b_pro_matches_the_official_shape():
    cfg = PRESETS["pangu-1b-pro"]
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.head_dim, cfg.ffn_hidden, cfg.vocab_size, cfg.block_size) == \
           (20, 1792, 14, 128, 4864, 0, 2048)                            # vocab from the data (48k + eot)
    n = count("pangu-1b-pro", vocab_size=48_064)                         # 48,001 ids padded to a multiple of 64
    assert 0.94e9 < n["total"] < 0.96e9                                  # ~0.95B
    assert n["embedding"] == n["lm_head"] == 48_064 * 1792               # untied
    assert 0.17 < (n["embedding"] + n["lm_head"]) / n["total"] < 0.19     # ~18% (PAPER.md §1)


def test_other_presets():
    assert 1.45e9 < count("pangu-1.5b-pro", vocab_size=48_064)["total"] < 1.6e9
    base = count("baseline-1b", vocab_size=100_288)
    assert 0.95e9 < base["total"] < 1.1e9
    assert (base["embedding"] + base["lm_head"]) / base["total"] > 0.35   # the waste the compact tokenizer removes
    assert 5e6 <= count("tiny", vocab_size=16_000)["rest"] <= 15e6
    assert count("small", vocab_size=16_000)["rest"] > 3 * count("tiny", vocab_size=16_000)["rest"]
    for name in PRESETS:                               # every preset builds and validates
        assert count(name, vocab_size=1000)["total"] > 0


def small_model(**kw):
    torch.manual_seed(0)
    cfg = model_config("tiny", **{"vocab_size": 300, "n_layer": 2, "n_embd": 64, "n_head": 4, "block_size": 64, **kw})
    return Transformer(cfg).eval()


def sharp_model(**kw):
    """small_model with query/key weights scaled up 5x each (scores 25x): attention far from uniform, so a
    wrong position or a wrong mask moves the outputs visibly (an untrained model's near-uniform attention
    hides them), but not so peaked that one key takes all the weight."""
    m = small_model(**kw)
    with torch.no_grad():
        for layer in m.layers:
            layer.attn.q_proj.weight.mul_(5)
            layer.attn.k_proj.weight.mul_(5)
    return m


def ids(*shape, seed=0, high=300):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------- RoPE --
def test_rope_rotates_a_known_vector_by_hand_computed_angles():
    # head size 4, base 10000: pair 0 = channels (0, 2) turns by 1 rad per position, pair 1 = channels
    # (1, 3) by 10000^(-2/4) = 0.01 rad. At position 2, x = (1, 2, 3, 4):
    #   ch0 = 1 cos 2 - 3 sin 2 = -3.144039   ch2 = 1 sin 2 + 3 cos 2 = -0.339143
    #   ch1 = 2 cos .02 - 4 sin .02 = 1.919605   ch3 = 2 sin .02 + 4 cos .02 = 4.039197
    m = small_model(n_embd=8, n_head=2)                             # the model's own cached tables
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(1, 1, 3, 4)        # (B, H, T, D), positions 0, 1, 2
    out = apply_rope(x, m.rope_cos[:3], m.rope_sin[:3])
    torch.testing.assert_close(out[0, 0, 0], x[0, 0, 0])             # position 0: no rotation
    torch.testing.assert_close(out[0, 0, 2], torch.tensor([-3.144039, 1.919605, -0.339143, 4.039197]))


def test_rope_pairs_channel_i_with_i_plus_half():
    # HF "rotate_half" layout, which export to HF LLaMA relies on: e_0 turns towards e_{D/2}, not e_1.
    m = small_model()                                                # head size 16
    e0 = torch.zeros(1, 1, 6, 16)
    e0[..., 0] = 1.0
    out = apply_rope(e0, m.rope_cos[:6], m.rope_sin[:6])[0, 0, 5]    # position 5: angle 5 rad
    want = torch.zeros(16)
    want[0], want[8] = 0.283662, -0.958924                           # cos 5, sin 5
    torch.testing.assert_close(out, want)


def test_rope_scores_depend_only_on_relative_position():
    m = small_model()
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 1, 1, 16, generator=g), torch.randn(1, 1, 1, 16, generator=g)
    cos, sin = m.rope_cos, m.rope_sin

    def score(i, j):                                                 # q at position i, k at position j
        return (apply_rope(q, cos[i:i + 1], sin[i:i + 1]) * apply_rope(k, cos[j:j + 1], sin[j:j + 1])).sum()
    torch.testing.assert_close(score(9, 4), score(9 + 30, 4 + 30))   # same distance 5: same score
    torch.testing.assert_close(score(4, 4), score(50, 50))
    assert not torch.allclose(score(9, 4), score(9, 5), atol=1e-3)   # other distance: other score


def test_the_model_tells_positions_apart():
    # Attention without a position signal is a function of the SET of earlier tokens: in one layer, the last
    # position's output cannot change when two earlier tokens swap places. RoPE must make it change.
    m = sharp_model(n_layer=1)
    outs = []
    m.layers[0].attn.register_forward_hook(lambda mod, args, out: outs.append(out[0, -1]))   # (C,) last position
    m(torch.tensor([[5, 9, 7, 3]]))
    m(torch.tensor([[9, 5, 7, 3]]))
    assert not torch.allclose(outs[0], outs[1], rtol=0.02, atol=0)      # measured: 10% apart


def test_rope_tables_grow_past_block_size():
    short = small_model(block_size=8)
    long_ = small_model(block_size=32)                               # same seed: same weights
    x = ids(1, 20, seed=2)
    torch.testing.assert_close(short(x)[0], long_(x)[0])            # positions 8..19 use grown tables
    assert len(short.rope_cos) >= 20 and "rope_cos" not in short.state_dict()   # not in checkpoints


# ------------------------------------------------------------------------------- causality, KV cache --
@pytest.mark.parametrize("kv", [0, 2, 1])
def test_future_tokens_never_change_earlier_logits(kv):
    m = small_model(n_kv_head=kv)
    idx = ids(2, 20, seed=1)
    changed = idx.clone()
    changed[:, 12:] = ids(2, 8, seed=2)
    a, _ = m(idx)
    b, _ = m(changed)
    assert torch.equal(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


@pytest.mark.parametrize("kv", [0, 2])
def test_kv_cache_generation_equals_no_cache(kv):
    m = sharp_model(n_kv_head=kv)
    idx = ids(2, 7, seed=3)
    assert torch.equal(m.generate(idx, 25, temperature=0), m.generate(idx, 25, temperature=0, use_cache=False))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = m.generate(idx, 25, temperature=0.9, top_k=20, generator=g1)
    b = m.generate(idx, 25, temperature=0.9, top_k=20, use_cache=False, generator=g2)
    assert torch.equal(a, b)


@pytest.mark.parametrize("kv", [0, 2, 1], ids=["mha", "gqa2", "mqa"])
@pytest.mark.parametrize("chunks", [(1, 1, 1, 1, 1, 1), (5, 1, 1, 1), (1, 4, 1, 3), (6, 3, 1, 2)],
                         ids=["one-by-one", "prompt5", "prompt1-multi", "prompt6-multi"])
def test_cached_logits_match_full_forward(kv, chunks):
    """Feeding the sequence through the KV cache in pieces (the prompt, then single tokens or several at
    once) gives the full forward's logits, for plain multi-head, grouped-query and multi-query layouts."""
    m = sharp_model(n_kv_head=kv)
    idx = ids(2, sum(chunks), seed=4)
    full, _ = m(idx)
    caches = [KVCache(2, m.config.kv_heads, sum(chunks), m.config.head_dim, "cpu", torch.float32) for _ in range(2)]
    parts, t = [], 0
    for n in chunks:
        parts.append(m(idx[:, t:t + n], caches=caches)[0])
        t += n
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-4, rtol=1e-4)


def test_generate_refuses_to_run_past_the_context():
    m = small_model()
    with pytest.raises(ValueError, match="exceeds the model's context of 64"):
        m.generate(torch.zeros(1, 60, dtype=torch.long), 10)


# ------------------------------------------------------------------------------------- chunked loss --
def full_logits_loss(m, idx, y, reduction):
    """The plain reference: all (B, T, V) logits, then one cross-entropy."""
    logits, _ = m(idx)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction=reduction)
    return loss.view_as(y) if reduction == "none" else loss


@pytest.mark.parametrize("rows", [7, 19, 1000], ids=["7-not-dividing-38", "19-dividing", "one-chunk"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_chunked_loss_and_gradients_equal_the_full_logits_path(monkeypatch, rows, reduction):
    m = small_model(n_kv_head=2).train()
    idx, y = ids(2, 19, seed=5), ids(2, 19, seed=6)
    w = torch.rand(2, 19, generator=torch.Generator().manual_seed(7))   # per-token upstream gradient
    weigh = (lambda l: (l * w).sum()) if reduction == "none" else (lambda l: l)
    ref = full_logits_loss(m, idx, y, reduction)
    weigh(ref).backward()
    ref_grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    monkeypatch.setattr(model, "LOSS_CHUNK_ROWS", rows)
    logits, loss = m(idx, y, reduction=reduction)
    assert logits is None and loss.shape == ref.shape
    weigh(loss).backward()
    torch.testing.assert_close(loss, ref)
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[n], msg=n)


def test_loss_never_holds_all_logits(monkeypatch):
    """Forward saves no logits for backward (each chunk is recomputed there), and no tensor of more than one
    chunk's logits is ever made, in forward or backward (every op's outputs are watched below autograd).
    With everything in one chunk the same probes do see the (N, V) logits: they can fail."""
    from torch.utils._python_dispatch import TorchDispatchMode

    def logit_rows(t):                           # rows of a V-wide tensor, 0 for others (and the head's W^T)
        return t.numel() // 300 if isinstance(t, torch.Tensor) and t.dim() and t.shape[-1] == 300 and t.shape != (64, 300) else 0

    class Largest(TorchDispatchMode):
        biggest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                self.biggest = max(self.biggest, logit_rows(t))
            return out

    m = small_model().train()
    idx, y = ids(2, 19, seed=5), ids(2, 19, seed=6)                  # 38 rows
    for rows in (8, 1000):
        monkeypatch.setattr(model, "LOSS_CHUNK_ROWS", rows)
        saved = []
        with Largest() as probe:
            with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(logit_rows(t)) or t, lambda t: t):
                _, loss = m(idx, y)
            loss.backward()
        if rows == 8:
            assert sum(saved) == 0 and probe.biggest == 8
        else:
            assert sum(saved) >= 38 and probe.biggest == 38


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction='avg'"):
        small_model()(ids(1, 3), ids(1, 3), reduction="avg")


# ---------------------------------------------------------------------------------- init, accounting --
def test_residual_branches_are_scaled_by_depth():
    m = small_model(n_layer=8, n_embd=256, vocab_size=64)
    std = m.layers[0].ffn.down_proj.weight.std().item()
    assert abs(std - 0.02 / 4) < 0.001                       # 0.02 / sqrt(2 * 8)
    assert abs(m.layers[0].ffn.up_proj.weight.std().item() - 0.02) < 0.002


def test_flops_and_tied_embeddings():
    m = small_model(tie_embeddings=True)
    n = m.param_count()
    assert n["lm_head"] == 0 and m.lm_head.weight is m.tok_emb.weight
    assert m.flops_per_token(64) == 6 * n["total"] + 6 * 2 * 64 * 64     # tied: the head matmul counts once


@pytest.mark.parametrize("kw, msg", [
    ({"n_embd": 100, "n_head": 3}, "n_embd=100 is not divisible by n_head=3"),
    ({"n_embd": 60, "n_head": 4}, "head size 15 is odd"),
    ({"n_kv_head": 3}, "n_kv_head=3 must divide n_head=4"),
    ({"n_kv_head": -1}, "n_kv_head=-1: use 0"),
    ({"vocab_size": 0}, "vocab_size is not set"),
    ({"ffn_ratio": -1.0}, "ffn_ratio must be positive, got -1.0"),
    ({"ffn_ratio": 0.0}, "ffn_ratio must be positive, got 0.0"),
    ({"ffn_ratio": math.nan}, "ffn_ratio must be positive, got nan"),
    ({"ffn_multiple": 0}, "ffn_multiple must be positive, got 0"),
    ({"rope_base": 0.0}, "rope_base must be positive, got 0.0"),
    ({"rope_base": math.nan}, "rope_base must be positive, got nan"),
    ({"norm_eps": -1.0}, "norm_eps must be positive, got -1.0"),
    ({"norm_eps": 0.0}, "norm_eps must be positive, got 0.0"),
    ({"n_head": 0}, "n_head must be positive, got 0"),
    ({"n_layer": 0}, "n_layer must be positive, got 0"),
    ({"block_size": -5}, "block_size must be positive, got -5"),
])
def test_config_errors_are_one_line(kw, msg):
    """Each bad shape is refused before any tensor exists, with a one-line message naming the field and
    its value (train.py prints it as `train.py: error: ...`), never a ZeroDivisionError or a model
    with no feed-forward units."""
    with pytest.raises(ValueError, match=msg) as err:
        small_model(**kw)
    assert "\n" not in str(err.value)


def test_unknown_preset_or_option():
    with pytest.raises(ValueError, match="unknown model preset"):
        model_config("huge")
    with pytest.raises(ValueError, match="unknown model option"):
        model_config("tiny", n_layers=3)
    assert ModelConfig().ffn_hidden % 64 == 0


# ------------------------------------------------------------------------------------ kernel switch --
def run_kernels_on_cpu(monkeypatch):
    """Make the model take its CUDA-only kernel path on CPU tensors (Triton's interpreter runs them): the
    seam is model.is_cuda, a plain function the switch asks."""
    pytest.importorskip("triton")
    monkeypatch.setattr(model, "is_cuda", lambda tensor: True)


def test_triton_kernel_path_matches_pytorch(monkeypatch, capsys):
    """The model's kernel branch (normally CUDA only), run through Triton's CPU interpreter: same logits and
    gradients as the PyTorch branch, grouped-query attention and the fused residual add included. The
    model prints nothing; kernel_paths() is what a script prints."""
    m = small_model(n_kv_head=2, n_embd=64, n_head=4)              # head dim 16
    idx = ids(2, 19, seed=8)
    ref_logits, _ = m(idx)
    _, loss = m(idx, idx)
    loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    run_kernels_on_cpu(monkeypatch)
    logits, _ = m(idx)
    _, loss = m(idx, idx)
    loss.backward()
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[n], atol=1e-4, rtol=1e-3, msg=n)
    assert capsys.readouterr().out == ""
    assert model.kernel_paths(m.config, "cuda") == "kernels: rmsnorm Triton, attention Triton"


def test_fused_add_and_norm_keeps_the_fp32_stream(monkeypatch):
    """Under autocast the attention output is bf16 and the residual stream fp32: the fused kernel path of
    Block.forward gives what the plain equations give, h = x + attn_out in fp32."""
    block = small_model(n_embd=64, n_head=4).layers[0]
    g = torch.Generator().manual_seed(9)
    x, cos, sin = torch.randn(1, 3, 64, generator=g), torch.ones(3, 8), torch.zeros(3, 8)
    attn_out = torch.randn(1, 3, 64, generator=g).bfloat16()
    monkeypatch.setattr(block.attn, "forward", lambda *args: attn_out)
    seen = []                                  # inherit.py hooks every RMSNorm: the fused call must reach it
    block.ffn_norm.register_forward_hook(lambda module, inputs, output: seen.append(type(output)))
    plain = block(x, cos, sin)
    run_kernels_on_cpu(monkeypatch)
    fused = block(x, cos, sin)
    assert plain.dtype == fused.dtype == torch.float32 and seen == [torch.Tensor, tuple]
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)


def test_unsupported_head_size_falls_back_to_sdpa(monkeypatch):
    """Head size 96 (e.g. n_embd=384, n_head=4) is not one the Triton attention takes: on CUDA the model must
    use PyTorch's attention instead of raising, still run RMSNorm's kernel, and kernel_paths() says so."""
    import kernels.attention
    m = small_model(n_embd=96, n_head=1, n_layer=1)
    idx = ids(1, 9, seed=10)
    ref_logits, _ = m(idx)
    run_kernels_on_cpu(monkeypatch)
    monkeypatch.setattr(kernels.attention, "flash_attention", lambda *a: pytest.fail("flash_attention called"))
    logits, _ = m(idx)
    _, loss = m(idx, idx)
    loss.backward()
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    assert model.kernel_paths(m.config, "cuda") == \
        "kernels: rmsnorm Triton, attention PyTorch (head size 96; the kernel takes 16, 32, 64, 128)"


def test_kernels_off_or_cpu_never_import_the_kernels(monkeypatch):
    """CPU tensors, or --use_kernels=false on CUDA: plain PyTorch, and kernels/ (hence triton) is never
    imported: model.py imports them only through importlib, replaced here by a tripwire."""
    tripwire = SimpleNamespace(import_module=lambda name: pytest.fail(f"imported {name}"))
    monkeypatch.setattr(model, "importlib", tripwire)
    on, off = small_model(use_kernels=True), small_model(use_kernels=False)
    on(ids(1, 4))                                                    # CPU tensors
    assert model.kernel_paths(on.config, "cpu") == "kernels: plain PyTorch (CUDA only)"
    monkeypatch.setattr(model, "is_cuda", lambda tensor: True)
    off(ids(1, 4))                                                   # "CUDA", kernels switched off
    assert model.kernel_paths(off.config, "cuda") == "kernels: plain PyTorch (use_kernels is off)"


# ------------------------------------------------------------------------------------- device choice --
@pytest.mark.parametrize("name, gpus, mps, want", [
    ("auto", 2, True, "cuda"), ("auto", 0, True, "mps"), ("auto", 0, False, "cpu"),
    ("cpu", 1, True, "cpu"), ("cuda", 1, False, "cuda"), ("cuda:1", 2, False, "cuda:1"), ("mps", 0, True, "mps"),
    ("cuda", 0, False, "--device=cuda but no CUDA GPU is visible to PyTorch; use --device=cpu or auto"),
    ("cuda:0", 0, True, "--device=cuda:0 but no CUDA GPU is visible to PyTorch; use --device=cpu or auto"),
    ("cuda:2", 2, False, "--device=cuda:2 but PyTorch sees 2 GPU(s): cuda:0 to cuda:1"),
    ("mps", 1, False, "--device=mps but this PyTorch has no MPS (Apple GPU); use --device=cpu"),
    ("banana", 1, True, "--device=banana: choose auto, cpu, cuda, cuda:N or mps"),
    ("cuda:x", 1, False, "--device=cuda:x: choose auto, cpu, cuda, cuda:N or mps"),
    ("CPU", 0, False, "--device=CPU: choose auto, cpu, cuda, cuda:N or mps"),
])
def test_resolve_device(monkeypatch, name, gpus, mps, want):
    """auto prefers CUDA, then Apple's MPS, then the CPU; an explicit device that is not there, or not a
    device at all, is a one-line error (the availability is faked: this machine has neither)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    if want.startswith("--device"):
        with pytest.raises(ValueError) as err:
            model.resolve_device(name)
        assert str(err.value) == want
    else:
        assert model.resolve_device(name) == want


# -------------------------------------------------------------------------------------------- MFU peak --
def test_peak_flops_only_from_the_datasheet_table(monkeypatch):
    assert model.device_peak_flops("cpu") is None                    # never a measured CPU peak
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100 80GB HBM3")
    assert model.device_peak_flops("cuda") == 989e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Mystery Accelerator 9000")
    assert model.device_peak_flops("cuda") is None


def test_train_bench_runs_without_nanogpt(capsys):
    from bench import train_bench
    train_bench.main(["--n_layer=1", "--n_embd=32", "--n_head=2", "--vocab=64", "--batch_size=2", "--seq_len=8",
                      "--steps=1", "--rounds=1"])
    out = capsys.readouterr().out
    assert "no --nanogpt=PATH given" in out and "ours:" in out and "tokens/s" in out


def test_cpu_rmsnorm_gradient_is_the_formulas():
    """RMSNormCPU's written-out backward equals autograd's gradient of the formula (float64 gradcheck)
    and F.rms_norm's values and gradients in float32 at a size that does not divide anything."""
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    w = (torch.rand(7, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: model.RMSNormCPU.apply(a, b, 1e-5), (x, w))
    x32, w32 = x.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    g = torch.randn(5, 7)
    ours = model.RMSNormCPU.apply(x32, w32, 1e-5)
    dx, dw = torch.autograd.grad(ours, (x32, w32), g)
    ref = F.rms_norm(x32, (7,), w32, 1e-5)
    rdx, rdw = torch.autograd.grad(ref, (x32, w32), g)
    for a, b in ((ours, ref), (dx, rdx), (dw, rdw)):
        torch.testing.assert_close(a, b)


def test_head_loss_equals_cross_entropy_of_the_logits():
    """HeadLoss (one (N, V) buffer) gives F.cross_entropy(h W^T)'s per-row losses and gradients."""
    torch.manual_seed(0)
    h = torch.randn(9, 6, requires_grad=True)
    w = torch.randn(11, 6, requires_grad=True)
    targets = torch.tensor([0, 10, 3, 3, 5, 1, 9, 2, 7])
    grad_rows = torch.rand(9)
    ours = model.HeadLoss.apply(h, w, targets)
    ref = F.cross_entropy(h @ w.t(), targets, reduction="none")
    torch.testing.assert_close(ours, ref)
    got = torch.autograd.grad(ours, (h, w), grad_rows)
    want = torch.autograd.grad(ref, (h, w), grad_rows)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
