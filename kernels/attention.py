"""Causal flash attention (FlashAttention-2 style) in Triton: forward and backward, with GQA.

Plain attention for one head, T tokens, head dim D:

    S = scale * Q @ K^T            # (T, T) scores, S[i, j] masked to -inf for j > i
    P = softmax(S, dim=-1)         # (T, T) row-wise
    O = P @ V                      # (T, D)

Materialising S and P costs T*T numbers per head (2048² * 14 heads * 4 B = 235 MB a sequence in
fp32) and a round trip through slow HBM. Flash attention never builds them: a program owns BLOCK_M
rows of Q, streams K, V in BLOCK_N-row tiles and keeps only (BLOCK_M, BLOCK_N) scores in SRAM.

Online softmax (exact, not an approximation). For one query row with scores s_1..s_N
    o = sum_j exp(s_j) v_j / sum_j exp(s_j),
unchanged if every exp(s_j) becomes exp(s_j - m): with m = the row max no exponent is positive,
nothing overflows (log-sum-exp trick). Tiles stream in, the final max is unknown: per row keep
    m = max score so far,  l = sum_j exp(s_j - m),  acc = sum_j exp(s_j - m) v_j   # (D,)
and when a tile raises the max to m', scale l and acc by alpha = exp(m - m') before adding its
terms; finally o = acc / l. GPUs have a native exp2: scores are multiplied by scale*log2(e) once.

The forward also saves, per row, the log-sum-exp of the (base-2) scores
    lse = log2(sum_j exp2(s_j)) = m + log2(l)     # (B, H, T) fp32
so the backward rebuilds any tile of P as exp2(s - lse), without a pass for the row's max and sum.

Causality: a key tile entirely right of the diagonal is never loaded (half the work), tiles left
of it need no mask, and only those crossing it pay for the `key <= query` test: two phases a loop.

GQA: H query heads share Hkv = H / group kv heads; query head h reads kv head h // group. The
backward sums dK, dV over a kv head's query heads in one program (no atomics).
"""

import math

import torch
import triton
import triton.language as tl

_LOG2E = 1.4426950408889634  # log2(e): exp(x) == exp2(x * _LOG2E)
_HEAD_DIMS = (16, 32, 64, 128)
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


# ---- Reference: materialises the (T, T) scores. Fine for tests, hopeless for T = 2048.
def attention_reference(q, k, v, scale=None):
    """Causal softmax attention in plain PyTorch, fp32 math. q (B,H,T,D), k/v (B,Hkv,T,D)."""
    B, H, T, D = q.shape
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    group = H // k.shape[1]  # query head h reads kv head h // group
    k, v = (t.float().repeat_interleave(group, dim=1) for t in (k, v))  # (B, H, T, D)
    s = scale * q.float() @ k.transpose(-2, -1)  # (B, H, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)  # j > i
    p = torch.softmax(s.masked_fill(future, float("-inf")), dim=-1)
    return (p @ v).to(q.dtype)  # (B, H, T, D)


# ---- Forward. Grid (cdiv(T, BLOCK_M), B * H): one program per query tile and head. Tensors are
# contiguous (B, heads, T, D); slice (b, h) starts at (b * heads + h) * T * D: int64 (> 2**31).
@triton.jit
def _key_tile(q, K, V, offs_m, start_n, T, qk_scale,
              HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, ON_DIAGONAL: tl.constexpr):
    """Keys/values [start_n, start_n + BLOCK_N): k, v (BLOCK_N, D) and q's scores s against k."""
    cols = start_n + tl.arange(0, BLOCK_N)  # (BLOCK_N,) key positions
    kv_offs = cols[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]  # (BLOCK_N, D)
    if ON_DIAGONAL:  # the last tile may run past T: masked lanes read 0
        k = tl.load(K + kv_offs, mask=cols[:, None] < T, other=0.0)
        v = tl.load(V + kv_offs, mask=cols[:, None] < T, other=0.0)
    else:  # strictly left of the diagonal: every key < the tile's first query < T
        k, v = tl.load(K + kv_offs), tl.load(V + kv_offs)
    s = tl.dot(q, tl.trans(k)) * qk_scale  # (BLOCK_M, BLOCK_N) fp32, base-2 units
    if ON_DIAGONAL:  # a future key (key > query) gets -inf: weight exp2(-inf) = 0
        s = tl.where(offs_m[:, None] >= cols[None, :], s, float("-inf"))
    return k, v, s


@triton.jit
def _fwd_tiles(acc, m_i, l_i, q, K, V, offs_m, lo, hi, T, qk_scale,
               HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, ON_DIAGONAL: tl.constexpr):
    """Fold key tiles [lo, hi) into the running (acc, m_i, l_i) of one query tile."""
    for start_n in range(lo, hi, BLOCK_N):
        k, v, s = _key_tile(q, K, V, offs_m, start_n, T, qk_scale, HEAD_DIM, BLOCK_N, ON_DIAGONAL)
        # Online softmax. Key 0 is visible to every row and the first tile visited holds
        # it, so m_new is finite from the first iteration on: no (-inf) - (-inf) = NaN.
        m_new = tl.maximum(m_i, tl.max(s, axis=1))  # (BLOCK_M,)
        alpha = tl.math.exp2(m_i - m_new)  # how much the old sums shrink: exp2(-inf) = 0
        p = tl.math.exp2(s - m_new[:, None])  # (BLOCK_M, BLOCK_N), each entry in [0, 1]
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)  # (BLOCK_M, D) fp32
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def _fwd_kernel(Q, K, V, O, LSE, qk_scale, T, GROUP,
                HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    tile_m, bh = tl.program_id(0), tl.program_id(1)  # query tile; bh = b * H + h
    bhkv = bh // GROUP  # b * Hkv + h // GROUP, as H = Hkv * GROUP
    Q, O = Q + bh.to(tl.int64) * T * HEAD_DIM, O + bh.to(tl.int64) * T * HEAD_DIM
    K, V = K + bhkv.to(tl.int64) * T * HEAD_DIM, V + bhkv.to(tl.int64) * T * HEAD_DIM
    offs_m = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query positions
    q_offs = offs_m[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]  # (BLOCK_M, D)
    row_ok = offs_m < T
    q = tl.load(Q + q_offs, mask=row_ok[:, None], other=0.0)  # stays in registers
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    lo = tile_m * BLOCK_M  # first key that is on or right of the diagonal (BLOCK_M % BLOCK_N == 0)
    # Phase 1: key tiles strictly left of the diagonal, no mask at all.
    acc, m_i, l_i = _fwd_tiles(acc, m_i, l_i, q, K, V, offs_m, 0, lo, T, qk_scale,
                               HEAD_DIM, BLOCK_N, ON_DIAGONAL=False)
    # Phase 2: key tiles crossing the diagonal, masked. Tiles right of it: never visited.
    acc, m_i, l_i = _fwd_tiles(acc, m_i, l_i, q, K, V, offs_m, lo, tl.minimum(lo + BLOCK_M, T),
                               T, qk_scale, HEAD_DIM, BLOCK_N, ON_DIAGONAL=True)
    tl.store(O + q_offs, (acc / l_i[:, None]).to(O.dtype.element_ty), mask=row_ok[:, None])
    tl.store(LSE + bh.to(tl.int64) * T + offs_m, m_i + tl.math.log2(l_i), mask=row_ok)


# ---- Backward math (per head; dO = dLoss/dO, all (T, D) unless said):
#   dV = P^T @ dO,    dP = dO @ V^T  (T, T)
#   dS = P * (dP - Delta[:, None]),  Delta_i = sum_j P_ij dP_ij = sum_d O_id dO_id
#        (softmax backward; the identity sum_j P_ij (dO_i . V_j) = dO_i . O_i lets a
#         tiny pre-pass compute Delta from O and dO alone, without the T x T matrix)
#   dQ = scale * dS @ K,    dK = scale * dS^T @ Q
#
# Two kernels, one owner per output tile (no atomics): _bwd_dkdv_kernel owns a key tile and walks
# the query tiles at or below it, summing dK, dV; _bwd_dq_kernel owns a query tile and walks the
# key tiles left of it, summing dQ. Both recompute P from the saved lse (flops, not T x T memory).
@triton.jit
def _bwd_delta_kernel(O, DO, DELTA, T, HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr):
    bh = tl.program_id(1)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs = bh.to(tl.int64) * T * HEAD_DIM + offs_m[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    o = tl.load(O + offs, mask=offs_m[:, None] < T, other=0.0).to(tl.float32)
    do = tl.load(DO + offs, mask=offs_m[:, None] < T, other=0.0).to(tl.float32)
    tl.store(DELTA + bh.to(tl.int64) * T + offs_m, tl.sum(o * do, axis=1), mask=offs_m < T)


@triton.jit
def _dkdv_tiles(dk, dv, k, v, Q, DO, LSE, DELTA, offs_n, lo, hi, T, qk_scale,
                HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, ON_DIAGONAL: tl.constexpr):
    """Add the contributions of query tiles [lo, hi) to one key tile's dk, dv."""
    for start_m in range(lo, hi, BLOCK_M):
        rows = start_m + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query positions
        row_ok = rows < T
        q_offs = rows[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
        q = tl.load(Q + q_offs, mask=row_ok[:, None], other=0.0)  # (BLOCK_M, D)
        do = tl.load(DO + q_offs, mask=row_ok[:, None], other=0.0)
        # Rows past T get lse = +inf, so their P is exp2(-inf) = 0 and they add nothing.
        lse = tl.load(LSE + rows, mask=row_ok, other=float("inf"))
        delta = tl.load(DELTA + rows, mask=row_ok, other=0.0)
        # Work with transposed tiles (keys along dim 0) so dk, dv need no transpose.
        s_t = tl.dot(k, tl.trans(q)) * qk_scale  # (BLOCK_N, BLOCK_M), base-2 units
        if ON_DIAGONAL:  # mask before exp2 so a future key's large score never overflows
            s_t = tl.where(rows[None, :] >= offs_n[:, None], s_t, float("-inf"))
        p_t = tl.math.exp2(s_t - lse[None, :])  # = P^T, exactly the forward's probabilities
        dv += tl.dot(p_t.to(do.dtype), do)  # P^T dO: (BLOCK_N, D)
        dp_t = tl.dot(v, tl.trans(do))  # (dO V^T)^T: (BLOCK_N, BLOCK_M)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(ds_t.to(q.dtype), q)  # dS^T Q, scale applied once at the end
    return dk, dv


@triton.jit
def _bwd_dkdv_kernel(Q, K, V, DO, LSE, DELTA, DK, DV, sm_scale, qk_scale, T, GROUP,
                     HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    tile_n, bhkv = tl.program_id(0), tl.program_id(1)  # key tile; bhkv = b * Hkv + hkv
    offs_n = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,) key positions
    kv_offs = bhkv.to(tl.int64) * T * HEAD_DIM + offs_n[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    col_ok = offs_n[:, None] < T
    k = tl.load(K + kv_offs, mask=col_ok, other=0.0)  # (BLOCK_N, D), read once
    v = tl.load(V + kv_offs, mask=col_ok, other=0.0)
    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    lo, hi = tile_n * BLOCK_N, tl.minimum((tile_n + 1) * BLOCK_N, T)  # queries < lo: cannot see keys
    for g in range(GROUP):  # GQA: every query head that reads this kv head
        bh = (bhkv * GROUP + g).to(tl.int64)  # = b * H + hkv * GROUP + g
        Qh, DOh = Q + bh * T * HEAD_DIM, DO + bh * T * HEAD_DIM
        LSEh, DELTAh = LSE + bh * T, DELTA + bh * T
        # Query tiles [lo, hi) cross the diagonal (masked); those from hi on lie fully below it.
        dk, dv = _dkdv_tiles(dk, dv, k, v, Qh, DOh, LSEh, DELTAh, offs_n, lo, hi, T, qk_scale,
                             HEAD_DIM, BLOCK_M, ON_DIAGONAL=True)
        dk, dv = _dkdv_tiles(dk, dv, k, v, Qh, DOh, LSEh, DELTAh, offs_n, hi, T, T,
                             qk_scale, HEAD_DIM, BLOCK_M, ON_DIAGONAL=False)
    tl.store(DK + kv_offs, (dk * sm_scale).to(DK.dtype.element_ty), mask=col_ok)
    tl.store(DV + kv_offs, dv.to(DV.dtype.element_ty), mask=col_ok)


@triton.jit
def _dq_tiles(dq, q, do, lse, delta, K, V, offs_m, lo, hi, T, qk_scale,
              HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr, ON_DIAGONAL: tl.constexpr):
    """Add the contributions of key tiles [lo, hi) to one query tile's dq."""
    for start_n in range(lo, hi, BLOCK_N):
        k, v, s = _key_tile(q, K, V, offs_m, start_n, T, qk_scale, HEAD_DIM, BLOCK_N, ON_DIAGONAL)
        p = tl.math.exp2(s - lse[:, None])
        dp = tl.dot(do, tl.trans(v))  # (BLOCK_M, BLOCK_N)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k)  # (BLOCK_M, D)
    return dq


@triton.jit
def _bwd_dq_kernel(Q, K, V, DO, LSE, DELTA, DQ, sm_scale, qk_scale, T, GROUP,
                   HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    tile_m, bh = tl.program_id(0), tl.program_id(1)  # query tile; bh = b * H + h
    bhkv = bh // GROUP
    K, V = K + bhkv.to(tl.int64) * T * HEAD_DIM, V + bhkv.to(tl.int64) * T * HEAD_DIM
    offs_m = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = offs_m < T
    q_offs = bh.to(tl.int64) * T * HEAD_DIM + offs_m[:, None] * HEAD_DIM + tl.arange(0, HEAD_DIM)[None, :]
    q = tl.load(Q + q_offs, mask=row_ok[:, None], other=0.0)  # (BLOCK_M, D)
    do = tl.load(DO + q_offs, mask=row_ok[:, None], other=0.0)
    lse = tl.load(LSE + bh.to(tl.int64) * T + offs_m, mask=row_ok, other=float("inf"))
    delta = tl.load(DELTA + bh.to(tl.int64) * T + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    lo = tile_m * BLOCK_M  # BLOCK_M % BLOCK_N == 0
    dq = _dq_tiles(dq, q, do, lse, delta, K, V, offs_m, 0, lo, T, qk_scale,
                   HEAD_DIM, BLOCK_N, ON_DIAGONAL=False)
    dq = _dq_tiles(dq, q, do, lse, delta, K, V, offs_m, lo, tl.minimum(lo + BLOCK_M, T), T,
                   qk_scale, HEAD_DIM, BLOCK_N, ON_DIAGONAL=True)
    tl.store(DQ + q_offs, (dq * sm_scale).to(DQ.dtype.element_ty), mask=row_ok[:, None])


# ---- Tile sizes (BLOCK_M, BLOCK_N, num_warps, num_stages). BLOCK_M % BLOCK_N == 0 in fwd/dq,
# BLOCK_N % BLOCK_M == 0 in dkdv (diagonal tiles line up); all >= 16 (tl.dot). Picked by compiling
# for sm_90 (H100): the largest tiles that do not spill registers (dkdv keeps its key tile's k, v,
# dk, dv: at D = 128 only 64-key tiles fit). NOT timed yet: tune with kernels/bench.py on a GPU.
def _config(D):
    if D <= 64:
        return dict(fwd=(128, 64, 8, 3), dkdv=(32, 128, 8, 3), dq=(128, 32, 8, 3))
    return dict(fwd=(128, 64, 8, 3), dkdv=(16, 64, 4, 3), dq=(64, 32, 4, 3))


# ---- Custom operators, one opaque step each for torch.compile (why: kernels/rmsnorm.py). q, k, v: contiguous.
@torch.library.custom_op("nanopangu::flash_attention_fwd", mutates_args=())
def _attention_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """q (B, H, T, D), k, v (B, Hkv, T, D) -> o (B, H, T, D), lse (B, H, T) fp32 in base 2."""
    B, H, T, D = q.shape
    o, lse = _attention_fwd_fake(q, k, v, scale)  # allocated as the fake says
    bm, bn, warps, stages = _config(D)["fwd"]
    _fwd_kernel[(triton.cdiv(T, bm), B * H)](q, k, v, o, lse, scale * _LOG2E, T, H // k.shape[1], HEAD_DIM=D,
                                             BLOCK_M=bm, BLOCK_N=bn, num_warps=warps, num_stages=stages)
    return o, lse


@_attention_fwd.register_fake
def _attention_fwd_fake(q, k, v, scale):
    return torch.empty_like(q), q.new_empty(q.shape[:3], dtype=torch.float32)


@torch.library.custom_op("nanopangu::flash_attention_bwd", mutates_args=())
def _attention_bwd(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor,
                   lse: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dO (B, H, T, D) and the forward's tensors -> dq, dk, dv shaped like q, k, v."""
    B, H, T, D = q.shape
    do = do.to(q.dtype).contiguous()
    delta = torch.empty_like(lse)  # (B, H, T) fp32: rowsum(O * dO)
    _bwd_delta_kernel[(triton.cdiv(T, 64), B * H)](o, do, delta, T, HEAD_DIM=D, BLOCK_M=64)
    dq, dk, dv = _attention_bwd_fake(do, q, k, v, o, lse, scale)
    args = (scale, scale * _LOG2E, T, H // k.shape[1])
    bm, bn, warps, stages = _config(D)["dkdv"]  # one program per key tile of each kv head
    grid = (triton.cdiv(T, bn), k.shape[0] * k.shape[1])  # (key tiles, B * Hkv)
    _bwd_dkdv_kernel[grid](q, k, v, do, lse, delta, dk, dv, *args, HEAD_DIM=D,
                           BLOCK_M=bm, BLOCK_N=bn, num_warps=warps, num_stages=stages)
    bm, bn, warps, stages = _config(D)["dq"]  # one program per query tile of each query head
    _bwd_dq_kernel[(triton.cdiv(T, bm), B * H)](q, k, v, do, lse, delta, dq, *args, HEAD_DIM=D,
                                                BLOCK_M=bm, BLOCK_N=bn, num_warps=warps, num_stages=stages)
    return dq, dk, dv


@_attention_bwd.register_fake
def _attention_bwd_fake(do, q, k, v, o, lse, scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _save_for_backward(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:3], *output)  # q, k, v, o, lse
    ctx.scale = inputs[3]


def _backward(ctx, do, _):  # the second gradient is lse's: zeros, lse is internal
    return *_attention_bwd(do, *ctx.saved_tensors, ctx.scale), None


_attention_fwd.register_autograd(_backward, setup_context=_save_for_backward)


def unsupported(q, k, v):
    """Why the kernel cannot run these inputs (a short reason), or None; model.py then uses SDPA."""
    if not (q.dtype == k.dtype == v.dtype and q.dtype in _FLOAT_DTYPES):
        return f"dtypes {q.dtype}, {k.dtype}, {v.dtype}; the kernel takes one of float32/float16/bfloat16"
    if q.shape[-1] not in _HEAD_DIMS:
        return f"head size {q.shape[-1]}; the kernel takes {', '.join(map(str, _HEAD_DIMS))}"
    return None


def _check_inputs(q, k, v, scale):
    """Raise a one-line TypeError/ValueError for anything the kernels would get wrong."""
    def fail(error, what):
        raise error(f"flash_attention: {what}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            fail(TypeError, f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4 or 0 in t.shape:
            fail(ValueError, f"{name} has shape {tuple(t.shape)}; expected 4-D (batch, heads, seq, head_dim), none 0")
        if t.dtype not in _FLOAT_DTYPES:
            fail(TypeError, f"{name} has dtype {t.dtype}; use float16, bfloat16 (GPU) or float32")
    if not (q.dtype == k.dtype == v.dtype):
        fail(TypeError, f"q, k, v dtypes differ ({q.dtype}, {k.dtype}, {v.dtype}); cast them to one dtype")
    if not (q.device == k.device == v.device):
        fail(ValueError, f"q, k, v are on different devices ({q.device}, {k.device}, {v.device})")
    (B, H, T, D), (Bk, Hkv, Tk, Dk) = q.shape, k.shape
    if k.shape != v.shape:
        fail(ValueError, f"k {tuple(k.shape)} and v {tuple(v.shape)} must have the same shape")
    if (Bk, Tk, Dk) != (B, T, D):
        fail(ValueError, f"q is {tuple(q.shape)}, k/v {tuple(k.shape)}; batch, seq and head_dim must match")
    if H % Hkv != 0:  # Hkv >= 1: no dim is 0 (checked above)
        fail(ValueError, f"{Hkv} kv heads must divide {H} query heads (grouped-query attention)")
    if D not in _HEAD_DIMS:
        fail(ValueError, f"head_dim {D} is not supported; supported head dims are {_HEAD_DIMS}")
    if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        fail(ValueError, f"scale must be a positive finite number or None, got {scale!r}")


def flash_attention(q, k, v, scale=None):
    """Causal attention. q (B, H, T, D); k, v (B, Hkv, T, D), Hkv divides H (GQA); D: 16/32/64/128.

    Returns (B, H, T, D) in q's dtype; scale defaults to 1/sqrt(D). Differentiable w.r.t. q, k, v.
    Meant for bf16/fp16 on GPU; float32 works (on a GPU its matmuls run in TF32, ~1e-3 relative).
    """
    _check_inputs(q, k, v, scale)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return _attention_fwd(q.contiguous(), k.contiguous(), v.contiguous(), scale)[0]
