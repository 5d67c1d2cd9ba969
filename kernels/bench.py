"""Time the Triton kernels against PyTorch on a GPU, side by side in one process.

    python kernels/bench.py                   # pangu-1b-pro shapes, bf16: RMSNorm + residual, attention
    python kernels/bench.py --what attention --seq 8192 --batch 2

Every number this prints must be measured on a CUDA GPU: under TRITON_INTERPRET=1 the kernels
run as numpy on the CPU, which says nothing about speed. bench/gpu_check.py calls bench_rmsnorm and
bench_attention with the 1B shapes and its targets (RMSNorm forward >= 2.6 TB/s effective,
backward no slower than compiled F.rms_norm; attention forward >= 1.0x, backward >= 0.7x SDPA flash).

How the numbers are counted (as the Triton tutorials do): only the bytes/FLOPs the math needs.
  RMSNorm + residual  forward reads x, r, writes y, s: 4 x-sized tensors; backward reads dy, ds,
                      s, writes dx: 4 again (weight, rstd, dweight: ~1/rows of that, ignored).
  causal attention    forward = 4 * B * H * T^2 * D * 0.5 FLOPs (QK^T and PV, 2 flops per
                      multiply-add, half the scores skipped); backward = 2.5 x forward
                      (5 matmuls instead of 2).
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def gpu_ms(fn, grad_to_none=None):
    """Median milliseconds of fn() on the GPU (do_bench flushes the L2 cache between runs)."""
    from triton.testing import do_bench
    return do_bench(fn, grad_to_none=grad_to_none, return_mode="median")


def cpu_ms(fn, grad_to_none=None):
    """Median of 3 wall-clock runs: only for --dry checks of the plumbing on CPU, never a speed."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _fwd_bwd(impls, grads, leaves, timer):
    """{name: (forward ms, backward ms)}, backward = (forward + backward) - forward.
    Not a backward alone on a kept graph (retain_graph=True): torch.compile's backward
    frees ("donates") its buffers and refuses that."""
    out = {}
    for name, fn in impls.items():
        fwd = timer(fn)
        both = timer(lambda: torch.autograd.backward(fn(), grads), grad_to_none=leaves)
        out[name] = (fwd, both - fwd)
    return out


def bench_rmsnorm(rows, C, dtype, device="cuda", timer=gpu_ms, compile_backend="inductor"):
    """{name: (fwd GB/s, bwd GB/s)} of RMSNorm with the residual add fused in, (rows, C)."""
    from kernels.rmsnorm import rms_norm
    x, r, dy, ds = (torch.randn(rows, C, device=device, dtype=dtype) for _ in range(4))
    w = torch.ones(C, device=device, dtype=dtype)  # the gain; its value does not change the speed
    leaves = [t.requires_grad_() for t in (x, r, w)]

    def eager():  # what model.py runs without the kernel: the add, then torch's RMSNorm
        s = x + r
        return F.rms_norm(s, (C,), w, 1e-5), s
    compiled = torch.compile(eager, backend=compile_backend)  # fused by the compiler, not by hand
    impls = {"triton rms_norm": lambda: rms_norm(x, w, 1e-5, residual=r), "F.rms_norm eager": eager,
             "F.rms_norm compiled": compiled}
    mb = 4 * x.numel() * x.element_size() / 1e6  # 4 x-sized tensors each way (docstring)
    return {k: (mb / f, mb / b) for k, (f, b) in _fwd_bwd(impls, [dy, ds], leaves, timer).items()}


def bench_attention(B, H, T, D, dtype, device="cuda", timer=gpu_ms):
    """{name: (fwd TFLOP/s, bwd TFLOP/s)} of causal attention, q, k, v (B, H, T, D)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from kernels.attention import flash_attention
    # no GQA: SDPA's flash backend wants as many kv heads as query heads (so has pangu-1b-pro)
    q, k, v, do = (torch.randn(B, H, T, D, device=device, dtype=dtype) for _ in range(4))
    leaves = [t.requires_grad_() for t in (q, k, v)]
    backend = SDPBackend.FLASH_ATTENTION if device == "cuda" else SDPBackend.MATH  # CPU: --dry only

    def sdpa():
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    impls = {"triton flash_attention": lambda: flash_attention(q, k, v), "SDPA flash": sdpa}
    tflop = 4 * B * H * T * T * D * 0.5 / 1e12  # forward (docstring)
    times = _fwd_bwd(impls, [do], leaves, timer)  # ms: TFLOP / ms * 1e3 = TFLOP/s
    return {k: (tflop / f * 1e3, 2.5 * tflop / b * 1e3) for k, (f, b) in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description="Benchmark kernels/ (Triton) against PyTorch on a CUDA GPU.")
    p.add_argument("--batch", type=int, default=8, help="sequences per batch (default 8)")
    p.add_argument("--seq", type=int, default=2048, help="tokens per sequence T (default 2048)")
    p.add_argument("--hidden", type=int, default=1792, help="RMSNorm width C (default 1792)")
    p.add_argument("--heads", type=int, default=14, help="attention heads H (default 14)")
    p.add_argument("--head_dim", type=int, default=128, help="head dim D (default 128)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--what", default="all", choices=["rmsnorm", "attention", "all"])
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("kernels/bench.py: error: a CUDA GPU is needed to benchmark the kernels; none was found")
        return 2
    # `python kernels/bench.py` puts kernels/ on sys.path, not the repo root: add it.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    dtype = getattr(torch, args.dtype)
    print(f"device: {torch.cuda.get_device_name()}   torch {torch.__version__}   {args.dtype}")
    if args.what in ("rmsnorm", "all"):
        rows = args.batch * args.seq  # every token of the batch is one row
        print(f"\nRMSNorm + residual, ({rows}, {args.hidden}){'fwd GB/s':>22}{'bwd GB/s':>10}")
        for name, (f, b) in bench_rmsnorm(rows, args.hidden, dtype).items():
            print(f"  {name:<42}{f:>10.0f}{b:>10.0f}")
    if args.what in ("attention", "all"):
        shape = (args.batch, args.heads, args.seq, args.head_dim)
        print(f"\ncausal attention, q = k = v = {shape}{'fwd TF/s':>15}{'bwd TF/s':>10}")
        for name, (f, b) in bench_attention(*shape, dtype).items():
            print(f"  {name:<42}{f:>10.1f}{b:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
