"""model.py: preset shapes and parameter counts, causality, KV-cache generation, config errors."""
import pytest
import torch

from model import PRESETS, Transformer, model_config, ModelConfig


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


@pytest.mark.parametrize("kv", [0, 2, 1])
def test_future_tokens_never_change_earlier_logits(kv):
    m = small_model(n_kv_head=kv)
    idx = torch.randint(0, 300, (2, 20))
    changed = idx.clone()
    changed[:, 12:] = torch.randint(0, 300, (2, 8))
    a, _ = m(idx)
    b, _ = m(changed)
    assert torch.equal(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


@pytest.mark.parametrize("kv", [0, 2])
def test_kv_cache_generation_equals_no_cache(kv):
    m = small_model(n_kv_head=kv)
    idx = torch.randint(0, 300, (2, 7))
    assert torch.equal(m.generate(idx, 25, temperature=0), m.generate(idx, 25, temperature=0, use_cache=False))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = m.generate(idx, 25, temperature=0.9, top_k=20, generator=g1)
    b = m.generate(idx, 25, temperature=0.9, top_k=20, use_cache=False, generator=g2)
    assert torch.equal(a, b)


def test_cached_logits_match_full_forward():
    from model import KVCache
    m = small_model()
    idx = torch.randint(0, 300, (1, 30))
    full, _ = m(idx)
    caches = [KVCache(1, m.config.kv_heads, 30, m.config.head_dim, "cpu", torch.float32) for _ in range(2)]
    first, _ = m(idx[:, :17], caches=caches)                 # a multi-token chunk, then one at a time
    rest = [m(idx[:, t:t + 1], caches=caches)[0] for t in range(17, 30)]
    torch.testing.assert_close(torch.cat([first] + rest, 1), full, atol=1e-5, rtol=1e-5)


def test_generate_refuses_to_run_past_the_context():
    m = small_model()
    with pytest.raises(ValueError, match="exceeds the model's context of 64"):
        m.generate(torch.zeros(1, 60, dtype=torch.long), 10)


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
    ({"n_embd": 100, "n_head": 3}, "not divisible by n_head"),
    ({"n_kv_head": 3}, "must divide n_head"),
    ({"vocab_size": 0}, "vocab_size is not set"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        small_model(**kw)


def test_unknown_preset_or_option():
    with pytest.raises(ValueError, match="unknown model preset"):
        model_config("huge")
    with pytest.raises(ValueError, match="unknown model option"):
        model_config("tiny", n_layers=3)
    assert ModelConfig().ffn_hidden % 64 == 0


def test_triton_kernel_path_matches_pytorch(monkeypatch):
    """The model's kernel branch (normally CUDA only), run through Triton's CPU interpreter: same logits and
    gradients as the PyTorch branch, grouped-query attention and the fused residual add included."""
    pytest.importorskip("triton")
    import model
    m = small_model(n_kv_head=2, n_embd=64, n_head=4)              # head dim 16
    idx = torch.randint(0, 300, (2, 19))
    ref_logits, ref_loss = m(idx, idx)
    ref_loss.backward()
    ref_grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    monkeypatch.setattr(model, "_use_kernels", lambda x, config: config.use_kernels)
    logits, loss = m(idx, idx)
    loss.backward()
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=1e-4)
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[n], atol=1e-4, rtol=1e-3, msg=n)
    norm = m.layers[0].ffn_norm                                      # bf16 branch + fp32 residual (autocast)
    a, x = torch.randn(3, 64).bfloat16(), torch.randn(3, 64)
    y, h = norm(a, residual=x)
    assert h.dtype == torch.float32
    torch.testing.assert_close(h, a.float() + x)
