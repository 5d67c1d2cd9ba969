"""Fused RMSNorm (with an optional fused residual add) in Triton: forward and backward.

RMSNorm of one row x of C numbers (no mean subtraction and no bias, unlike LayerNorm):

    rstd = 1 / sqrt(mean(x ** 2) + eps)        # one scalar per row
    y    = x * rstd * w                        # w: the learned gain, shape (C,)

Pre-norm transformers do `h = h + f(h)` then `rmsnorm(h)` around every sub-block. With
`residual=` the add is fused in: the kernel reads x and residual once, writes the sum
s = x + residual (the next residual stream) and y = rmsnorm(s) * w in the same pass.

Why bother?  RMSNorm does ~4 flops per byte it touches, so its speed is the speed of memory. Eager
PyTorch runs a chain of kernels (pow, mean, add, rsqrt, mul, mul) and each one reads and writes the
whole (rows, C) tensor; the fused kernel reads each input once and writes each output once, in
registers in between, with fp32 accumulation whatever the storage dtype.
"""

import torch
import triton
import triton.language as tl

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_MAX_C = 65536  # the whole row must fit in one program's registers (see BLOCK_C below)


# ---- Reference: what the kernels must compute, written the obvious way.
def rms_norm_reference(x, weight, eps=1e-5, residual=None):
    """Plain-PyTorch RMSNorm with fp32 math and the same return convention as rms_norm."""
    s = x if residual is None else x + residual  # the sum is stored in x's dtype
    s32 = s.float()  # (..., C)
    rstd = torch.rsqrt(s32.pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    y = (s32 * rstd * weight.float()).to(x.dtype)
    return y if residual is None else (y, s)


# ---- Forward kernel. Grid = (n_rows,): program `row` normalises one row of C numbers.
# BLOCK_C is C rounded up to a power of two (tl.arange needs one); the `cols < C` mask
# turns the extra lanes off, which is how C = 96 or 1792 works.
@triton.jit
def _rms_norm_fwd_kernel(
    X, R, W, Y, S, RSTD,  # pointers: x, residual, weight, y, sum out, rstd out (fp32)
    C, eps,
    HAS_RESIDUAL: tl.constexpr,  # compile-time: the residual branch is removed when False
    BLOCK_C: tl.constexpr,
):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_C)  # (BLOCK_C,)
    mask = cols < C
    offs = row.to(tl.int64) * C + cols  # int64: rows * C may pass 2**31 on big batches

    x = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)  # (BLOCK_C,) fp32
    if HAS_RESIDUAL:
        r = tl.load(R + offs, mask=mask, other=0.0).to(tl.float32)
        # Round the sum to the storage dtype *before* normalising it: the backward pass
        # reloads the stored s, so forward and backward then see the very same numbers.
        s = (x + r).to(S.dtype.element_ty)
        tl.store(S + offs, s, mask=mask)
        x = s.to(tl.float32)

    # Masked lanes hold 0, so they add nothing to the sum; divide by the true C.
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / C + eps)  # scalar
    tl.store(RSTD + row, rstd)  # 4 bytes per row, saved so the backward skips the sum
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + offs, (x * rstd * w).to(Y.dtype.element_ty), mask=mask)


# ---- Backward math for one row (xhat = x * rstd, the normalised row; g = w * dy):
#
#   y_j = w_j * x_j * rstd,   d rstd / d x_i = -rstd**3 * x_i / C
#   dx_i = sum_j dy_j * w_j * (delta_ij * rstd + x_j * d rstd / d x_i)
#        = rstd * (g_i - xhat_i * mean_j(g_j * xhat_j))               # per row
#   dw_j = sum over ALL rows of dy_j * xhat_j                          # across rows
#
# dx is row-local, like the forward; dw sums over every row: (rows, C) -> (C,). The Triton tutorial
# adds each program's dw into a few shared buffers behind a spin lock (atomic compare-and-swap):
# programs take the lock in a different order each run and float addition is not associative, so
# dw's last bits change between identical runs; and programs queue on the lock.
#
# Here instead: P programs (fixed per device), program p owns a contiguous block of rows, keeps
# its dw in registers and writes it once to row p of a (P, C) fp32 buffer; torch .sum(0) over the P
# rows finishes. No program waits for another and both summation orders are fixed, so dw is bitwise
# identical run after run, for P * C extra fp32 numbers against rows * C.
@triton.jit
def _rms_norm_bwd_kernel(
    DY, DS, S, W, RSTD,  # grad of y, grad flowing into the returned sum (maybe unused),
    DX, DW_PARTIAL,      # the normalised input s (or x), weight, saved rstd; outputs
    n_rows, C, rows_per_program,
    HAS_DS: tl.constexpr, BLOCK_C: tl.constexpr,
):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_C)
    mask = cols < C
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)  # loaded once, reused
    dw = tl.zeros([BLOCK_C], dtype=tl.float32)  # this program's partial dW, fp32

    row_start = pid * rows_per_program
    for row in range(row_start, tl.minimum(row_start + rows_per_program, n_rows)):
        offs = tl.cast(row, tl.int64) * C + cols
        x = tl.load(S + offs, mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(DY + offs, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + row)
        xhat = x * rstd
        g = w * dy
        dx = rstd * (g - xhat * (tl.sum(xhat * g, axis=0) / C))
        if HAS_DS:  # s also went back to the caller (the next residual stream): d s / d x = 1
            dx += tl.load(DS + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(DX + offs, dx.to(DX.dtype.element_ty), mask=mask)
        dw += dy * xhat

    tl.store(DW_PARTIAL + pid * C + cols, dw, mask=mask)


def _launch_config(C):
    """BLOCK_C and num_warps for a row of C elements: ~8 fp32 per thread, 1..8 warps."""
    block_c = triton.next_power_of_2(C)
    return block_c, min(max(block_c // 256, 1), 8)


def _n_bwd_programs(n_rows, device):
    """How many programs share the rows in the backward; fixed per device => deterministic. On a
    GPU ~4 resident programs per SM keep HBM busy (a tunable: kernels/bench.py); on CPU 8."""
    if device.type == "cuda":
        return min(n_rows, 4 * torch.cuda.get_device_properties(device).multi_processor_count)
    return min(n_rows, 8)


# ---- Custom operators. torch.compile cannot trace into a Triton launch made from Python, so
# each launch is a torch.library custom op: a "fake" version gives only output shapes and
# dtypes, and the compiler calls the op as one opaque step. The gradient formula is
# registered on the op itself (register_autograd), so compiled and eager backward match.
# An op's outputs must be new tensors: without a residual, "s" comes back empty.
@torch.library.custom_op("nanopangu::rms_norm_fwd", mutates_args=())
def _rms_norm_fwd(x: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None,
                  eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, residual (rows, C) contiguous -> y, s = x + residual ((0,) if none), rstd (rows,) fp32."""
    has_res = residual is not None
    y, s, rstd = _rms_norm_fwd_fake(x, weight, residual, eps)  # allocated as the fake says
    block_c, num_warps = _launch_config(x.shape[1])
    _rms_norm_fwd_kernel[(x.shape[0],)](  # unused pointers get x (HAS_RESIDUAL=False: never read)
        x, residual if has_res else x, weight, y, s if has_res else x, rstd, x.shape[1], eps,
        HAS_RESIDUAL=has_res, BLOCK_C=block_c, num_warps=num_warps)
    return y, s, rstd


@_rms_norm_fwd.register_fake
def _rms_norm_fwd_fake(x, weight, residual, eps):
    s = torch.empty_like(x) if residual is not None else x.new_empty(0)
    return torch.empty_like(x), s, x.new_empty(x.shape[0], dtype=torch.float32)


@torch.library.custom_op("nanopangu::rms_norm_bwd", mutates_args=())
def _rms_norm_bwd(dy: torch.Tensor, ds: torch.Tensor | None, s: torch.Tensor, weight: torch.Tensor,
                  rstd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients (rows, C) of y and of the returned sum (or None) -> dx (rows, C), dweight (C,)."""
    n_rows, C = s.shape
    n_prog, (block_c, num_warps) = _n_bwd_programs(n_rows, s.device), _launch_config(C)
    dx, dy = torch.empty_like(s), dy.contiguous()
    dw_partial = s.new_empty((n_prog, C), dtype=torch.float32)  # one row per program
    _rms_norm_bwd_kernel[(n_prog,)](
        dy, ds.contiguous() if ds is not None else dy, s, weight, rstd, dx, dw_partial,
        n_rows, C, triton.cdiv(n_rows, n_prog),
        HAS_DS=ds is not None, BLOCK_C=block_c, num_warps=num_warps)
    return dx, dw_partial.sum(0).to(weight.dtype)  # the second, fixed-order reduction


@_rms_norm_bwd.register_fake
def _(dy, ds, s, weight, rstd):
    return torch.empty_like(s), torch.empty_like(weight)


def _save_for_backward(ctx, inputs, output):
    x, weight, residual, _ = inputs
    ctx.has_res = residual is not None
    ctx.save_for_backward(output[1] if ctx.has_res else x, weight, output[2])  # normalised s (or x)


def _backward(ctx, dy, ds, _):
    """Autograd hands zeros for an unused output. s = x + residual: both get the same dx."""
    dx, dw = _rms_norm_bwd(dy, ds if ctx.has_res else None, *ctx.saved_tensors)
    return dx, dw, dx if ctx.has_res else None, None


_rms_norm_fwd.register_autograd(_backward, setup_context=_save_for_backward)


# ---- Public entry point.
def unsupported(x, weight, residual=None):
    """Why these (well-formed) inputs are beyond the kernel, as a short reason, or None if it runs them.
    model.py asks before choosing this kernel and otherwise uses torch's F.rms_norm."""
    dtypes = {t.dtype for t in (x, weight, residual) if t is not None}
    if not dtypes <= set(_FLOAT_DTYPES):
        return f"dtypes {sorted(map(str, dtypes))}; the kernel takes float32/float16/bfloat16"
    if x.shape[-1] > _MAX_C:
        return f"hidden size {x.shape[-1]} > {_MAX_C}; a row must fit in one program"
    return None


def _check_inputs(x, weight, eps, residual):
    """Raise a one-line TypeError/ValueError for anything the kernels would get wrong."""
    if not all(map(torch.is_tensor, (x, weight, x if residual is None else residual))):
        raise TypeError("rms_norm: x, weight and residual (if given) must be torch.Tensors")
    for name, t in (("x", x), ("weight", weight)):
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"rms_norm: {name} has dtype {t.dtype}; use float32, float16 or bfloat16")
    if x.dim() < 1 or x.numel() == 0:  # numel 0 covers C = 0
        raise ValueError(f"rms_norm: x has shape {tuple(x.shape)}; need (..., C) with C >= 1 and no empty dim")
    C = x.shape[-1]
    if weight.shape != (C,):
        raise ValueError(f"rms_norm: weight has shape {tuple(weight.shape)}, expected ({C},) to match x's last dim")
    if C > _MAX_C:
        raise ValueError(f"rms_norm: hidden size {C} > {_MAX_C} is too large for the one-pass kernel")
    if weight.device != x.device:
        raise ValueError(f"rms_norm: x is on {x.device} but weight is on {weight.device}; move them to one device")
    if residual is not None and (residual.shape, residual.dtype, residual.device) != (x.shape, x.dtype, x.device):
        raise ValueError(f"rms_norm: residual is {tuple(residual.shape)} {residual.dtype} on {residual.device}, "
                         f"expected the same shape/dtype/device as x: {tuple(x.shape)} {x.dtype} on {x.device}")
    if not (float(eps) >= 0.0):
        raise ValueError(f"rms_norm: eps must be >= 0, got {eps}")


def rms_norm(x, weight, eps=1e-5, residual=None):
    """RMSNorm over the last dim of x (..., C), scaled by weight (C,); fp32 math, output x's dtype.

    float32/float16/bfloat16, any C up to 65536. Without residual returns y = rmsnorm(x) * weight;
    with residual (same shape/dtype as x) returns (rmsnorm(s) * weight, s), s = x + residual.
    Differentiable w.r.t. x, weight and residual (and through the returned s).
    """
    _check_inputs(x, weight, eps, residual)
    rows = lambda t: None if t is None else t.reshape(-1, x.shape[-1]).contiguous()  # (rows, C)
    y, s, _ = _rms_norm_fwd(rows(x), weight.contiguous(), rows(residual), float(eps))
    return y.view(x.shape) if residual is None else (y.view(x.shape), s.view(x.shape))
