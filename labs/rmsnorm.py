"""
Lab 1 — RMSNorm, forward and backward, as a torch.autograd.Function (gradient derived by hand).

The paper's model is LLaMA-style: pre-norm RMSNorm with eps 1e-5 in front of every attention and FFN
block (paper, Architecture Tweak; ../shared/PAPER.md §2). model.py calls torch's F.rms_norm, and on
a GPU kernels/rmsnorm.py replaces it by a Triton kernel whose backward is written by hand. You write
that backward here, in PyTorch, for one row x of C numbers and the learned gain w (C,):

    rstd = 1 / sqrt(mean_j(x_j²) + eps)          one scalar per row (eps INSIDE the square root)
    xhat = x * rstd                               the normalised row
    y    = xhat * w

Backward, given dy = dL/dy (same shape as x). Write g = w * dy. y_j depends on x_i twice: directly
(j = i) and through rstd, which every x_i changes: d rstd / d x_i = -rstd³ · x_i / C. Derive

    dx_i = rstd · (g_i - xhat_i · mean_j(g_j · xhat_j))          per row
    dw_j = Σ over ALL rows (every leading dim) of dy_j · xhat_j   one (C,) vector

Shapes: x (..., C) any number of leading dims, float32 or float64; weight (C,); y like x.
backward returns one gradient per input of forward: (dx like x, dw like weight, None for eps).

Hints:
  - in forward, save what backward needs with ctx.save_for_backward(x, weight, rstd); keep rstd
    with a trailing dim of 1, (..., 1), so it broadcasts against (..., C);
  - "mean_j(g·xhat)" is a mean over the last dim only, keepdim=True;
  - dw sums over every leading dim: reshape to (rows, C) first, or sum over all dims but the last.
  - forward runs with autograd off: nothing you compute there is differentiated for you.

Grade it:  python labs/grade.py rmsnorm        (the project's own: kernels/rmsnorm.py, rms_norm)
"""
import torch


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):
        """y = x / sqrt(mean(x², last dim) + eps) * weight. x (..., C), weight (C,) -> (..., C)."""
        raise NotImplementedError("labs/rmsnorm.py: write RMSNormFunction.forward")

    @staticmethod
    def backward(ctx, dy):
        """dy: (..., C) -> (dx (..., C), dw (C,), None)."""
        raise NotImplementedError("labs/rmsnorm.py: write RMSNormFunction.backward")


def rms_norm(x, weight, eps=1e-5):
    """What the grader calls (already written): the function above, through autograd."""
    return RMSNormFunction.apply(x, weight, eps)
