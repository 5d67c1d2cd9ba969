"""
Lab 9 (GPU only) — The Triton RMSNorm forward kernel.

RMSNorm does ~4 flops per byte it touches, so its speed is the speed of memory: eager PyTorch runs a
chain of kernels (pow, mean, add, rsqrt, mul, mul), each reading and writing the whole tensor; one
fused kernel reads x once and writes y once (kernels/rmsnorm.py). The model it serves is the paper's
pre-norm LLaMA-style decoder (paper, Architecture Tweak; ../shared/PAPER.md §2). Do lab 1 (rmsnorm)
first: same math.

    rstd = 1 / sqrt(mean_j(x_j²) + eps);   y = x · rstd · w          per row of C numbers, fp32 math

One program per row (grid = (rows,)). tl.arange needs a power of two, so a program holds BLOCK_C =
next_power_of_2(C) lanes and MASKS the lanes >= C (loads give 0 there, stores skip them); divide the
sum of squares by the true C, not BLOCK_C.

Signatures:
    rmsnorm_fwd_kernel(X, W, Y, C, eps, BLOCK_C: tl.constexpr)  — @triton.jit, pointers X, W, Y
    rms_norm_forward(x, weight, eps=1e-5) -> y
        x: (rows, C) contiguous CUDA tensor, float32 or bfloat16; weight (C,); y like x (cast back
        at the store)

Hints: row = tl.program_id(0); cols = tl.arange(0, BLOCK_C); mask = cols < C;
tl.load(X + row * C + cols, mask=mask, other=0.0).to(tl.float32); tl.sum(v, axis=0); 1 /
tl.sqrt(...); tl.store(Y + ..., y.to(Y.dtype.element_ty), mask=mask); launch:
rmsnorm_fwd_kernel[(rows,)](x, w, y, C, eps, BLOCK_C=triton.next_power_of_2(C)).

Runs on an NVIDIA GPU; elsewhere the grader skips it (or runs Triton's CPU interpreter if you set
TRITON_INTERPRET=1 before starting Python: slow, but it checks your logic).

Grade it:  python labs/grade.py triton_rmsnorm  (the project's own: kernels/rmsnorm.py, forward)
"""
import triton
import triton.language as tl


@triton.jit
def rmsnorm_fwd_kernel(X, W, Y, C, eps, BLOCK_C: tl.constexpr):
    """Normalise row tl.program_id(0) of X into Y."""
    pass   # write the kernel


def rms_norm_forward(x, weight, eps=1e-5):
    """Allocate y, launch one program per row, return y."""
    raise NotImplementedError("labs/triton_rmsnorm.py: write rmsnorm_fwd_kernel and launch it here")
