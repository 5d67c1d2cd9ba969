"""Hand-written Triton kernels, fused RMSNorm (rmsnorm.py) and causal flash attention (attention.py),
each beside its torch.autograd glue and a plain-PyTorch reference; bench.py times them on a GPU.
This file imports nothing: Triton does not exist on macOS/Windows, so model.py imports
kernels.rmsnorm / kernels.attention lazily, and only for CUDA tensors."""
