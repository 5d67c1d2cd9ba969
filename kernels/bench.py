"""Time the Triton kernels against PyTorch on a GPU.

    python kernels/bench.py                      # pangu-1b-pro shapes, bf16, everything
    python kernels/bench.py --what attention --seq 4096

Every number this prints must be measured on a CUDA GPU: the project's CI has none, and
under TRITON_INTERPRET=1 the kernels run as numpy on the CPU, which says nothing about
speed. Defaults are the pangu-1b-pro shapes: 8 x 2048 tokens, hidden 1792, 14 heads of
128, bf16. Targets (H100): RMSNorm forward >= 2.0 TB/s and a backward no slower than
torch.nn.RMSNorm (F.rms_norm); attention forward >= 1.0x and backward >= 0.7x the TFLOP/s
of SDPA's flash backend.

How the numbers are counted (as the Triton tutorials do):
  RMSNorm   GB/s = bytes / time; forward bytes = 2 * x bytes (read x, write y),
            backward bytes = 3 * x bytes (read x and dy, write dx); weight/rstd ignored.
  attention causal FLOPs: forward = 4 * B * H * T^2 * D * 0.5 (two matmuls, 2 flops per
            multiply-add, half the score matrix skipped), backward = 2.5 * forward.
"""

import argparse
import os
import sys

import torch


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Benchmark kernels/ (Triton) against PyTorch on a CUDA GPU.")
    p.add_argument("--batch", type=int, default=8, help="sequences per batch (default 8)")
    p.add_argument("--seq", type=int, default=2048, help="tokens per sequence T (default 2048)")
    p.add_argument("--hidden", type=int, default=1792, help="RMSNorm width C (default 1792)")
    p.add_argument("--heads", type=int, default=14, help="query heads H (default 14)")
    p.add_argument("--kv_heads", type=int, default=0, help="key/value heads, 0 = same as --heads")
    p.add_argument("--head_dim", type=int, default=128, help="head dim D (default 128)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--what", default="all", choices=["rmsnorm", "attention", "all"])
    return p.parse_args(argv)


def _time(fn, grad_to_none=None):
    from triton.testing import do_bench
    return do_bench(fn, grad_to_none=grad_to_none, return_mode="median")  # milliseconds


def bench_rmsnorm(args, dtype):
    import torch.nn.functional as F
    from kernels.rmsnorm import rms_norm, rms_norm_reference

    M, C, eps = args.batch * args.seq, args.hidden, 1e-5
    x = torch.randn(M, C, device="cuda", dtype=dtype, requires_grad=True)
    w = torch.ones(C, device="cuda", dtype=dtype, requires_grad=True)
    dy = torch.randn_like(x)
    compiled = torch.compile(rms_norm_reference)
    impls = {
        "triton rms_norm": lambda: rms_norm(x, w, eps),
        "eager reference": lambda: rms_norm_reference(x, w, eps),
        "F.rms_norm": lambda: F.rms_norm(x, (C,), w, eps),
        "torch.compile(reference)": lambda: compiled(x, w, eps),
    }
    xb = x.numel() * x.element_size()
    print(f"\nRMSNorm  x = ({M}, {C}) {args.dtype}   GB/s: forward = 2 * x bytes / t, "
          f"backward = 3 * x bytes / t   (x bytes = {xb / 1e6:.1f} MB)")
    print(f"{'implementation':<26}{'fwd ms':>9}{'fwd GB/s':>10}{'bwd ms':>9}{'bwd GB/s':>10}{'fwd+bwd ms':>12}")
    for name, fn in impls.items():
        fwd = _time(fn)
        y = fn()
        bwd = _time(lambda: y.backward(dy, retain_graph=True), grad_to_none=[x, w])
        both = _time(lambda: fn().backward(dy), grad_to_none=[x, w])
        print(f"{name:<26}{fwd:>9.3f}{2 * xb / fwd * 1e-6:>10.0f}{bwd:>9.3f}{3 * xb / bwd * 1e-6:>10.0f}{both:>12.3f}")


def bench_attention(args, dtype):
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from kernels.attention import flash_attention

    B, H, T, D = args.batch, args.heads, args.seq, args.head_dim
    Hkv = args.kv_heads or H
    q = torch.randn(B, H, T, D, device="cuda", dtype=dtype, requires_grad=True)
    k = torch.randn(B, Hkv, T, D, device="cuda", dtype=dtype, requires_grad=True)
    v = torch.randn(B, Hkv, T, D, device="cuda", dtype=dtype, requires_grad=True)
    # SDPA's flash backend wants equal head counts: expand GQA k/v once, outside the timing.
    k_full = k.detach().repeat_interleave(H // Hkv, dim=1).requires_grad_()
    v_full = v.detach().repeat_interleave(H // Hkv, dim=1).requires_grad_()
    do = torch.randn_like(q)

    def sdpa():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k_full, v_full, is_causal=True)

    impls = {"triton flash_attention": (lambda: flash_attention(q, k, v), [q, k, v]),
             "SDPA flash (is_causal)": (sdpa, [q, k_full, v_full])}
    fwd_flops = 4 * B * H * T * T * D * 0.5
    print(f"\nattention  q = ({B}, {H}, {T}, {D}), kv heads {Hkv}, {args.dtype}, causal   "
          f"FLOPs: forward = 4*B*H*T^2*D*0.5 = {fwd_flops / 1e12:.3f} T, backward = 2.5 * forward")
    print(f"{'implementation':<26}{'fwd ms':>9}{'fwd TF/s':>10}{'bwd ms':>9}{'bwd TF/s':>10}{'fwd+bwd ms':>12}")
    for name, (fn, leaves) in impls.items():
        fwd = _time(fn)
        o = fn()
        bwd = _time(lambda: o.backward(do, retain_graph=True), grad_to_none=leaves)
        both = _time(lambda: fn().backward(do), grad_to_none=leaves)
        print(f"{name:<26}{fwd:>9.3f}{fwd_flops / fwd * 1e-9:>10.1f}{bwd:>9.3f}"
              f"{2.5 * fwd_flops / bwd * 1e-9:>10.1f}{both:>12.3f}")


def main(argv=None):
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("kernels/bench.py: a CUDA GPU is needed to benchmark the Triton kernels; none was found.")
        return 2
    try:
        import triton  # noqa: F401
    except ImportError:
        print("kernels/bench.py: Triton is not installed (pip install triton); cannot benchmark.")
        return 2
    # `python kernels/bench.py` puts kernels/ on sys.path, not the repo root: add it.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    dtype = getattr(torch, args.dtype)
    print(f"device: {torch.cuda.get_device_name()}   torch {torch.__version__}   triton {triton.__version__}")
    if args.what in ("rmsnorm", "all"):
        bench_rmsnorm(args, dtype)
    if args.what in ("attention", "all"):
        bench_attention(args, dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
