"""Hand-written Triton kernels for nanopangu: fused RMSNorm and causal flash attention.

Each module holds, side by side, the Triton kernels, the torch.autograd.Function that
glues them to autograd, and a plain-PyTorch reference used by the tests:

    kernels/rmsnorm.py    rms_norm(x, weight, eps, residual)   / rms_norm_reference
    kernels/attention.py  flash_attention(q, k, v, scale)      / attention_reference
    kernels/bench.py      GPU timings against PyTorch (python kernels/bench.py --help)

This file deliberately imports nothing: Triton does not exist on macOS/Windows, so the
model imports `kernels.rmsnorm` / `kernels.attention` lazily, and only for CUDA tensors.
"""
