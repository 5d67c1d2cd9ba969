"""
Lab 3 — Causal self-attention with grouped-query heads (GQA).

The paper's model is a decoder: token t may look at tokens 0..t only (paper, Architecture Tweak;
../shared/PAPER.md §2). With grouped-query attention (model.py's n_kv_head) H query heads share Hkv
< H key/value heads: the k/v projections and the KV cache shrink by H / Hkv, a cheap way to make a
deep-and-narrow tiny model faster at generation. Each group of g = H / Hkv CONSECUTIVE query heads
shares one kv head:

    query head h uses kv head h // g            (heads 0..g-1 -> kv 0, heads g..2g-1 -> kv 1, ...)

For every head h and query position i:

    s_ij = q_i · k_j / sqrt(D)        for j <= i;   s_ij = -inf for j > i (the future)
    p_i  = softmax_j(s_i)
    out_i = Σ_j p_ij v_j

Signature:
    causal_attention(q, k, v) -> (B, H, T, D)
    q: (B, H, T, D); k, v: (B, Hkv, T, D); H % Hkv == 0 (Hkv == H is plain multi-head attention)

Hints: expand k and v to H heads first with torch.repeat_interleave(k, g, dim=1), NOT
k.repeat(1, g, 1, 1), whose order kv0, kv1, kv0, kv1 has query head 1 read kv head 1;
torch.ones(T, T).triu(1) marks j > i; masked_fill with -inf before the softmax. Do not call
F.scaled_dot_product_attention: the project does (model.Attention); here you write what it computes.

Grade it:  python labs/grade.py attention      (the project's own: model.Attention, through SDPA)
"""
import torch


def causal_attention(q, k, v):
    """Causal softmax attention; query head h reads kv head h // (H // Hkv). -> (B, H, T, D)."""
    raise NotImplementedError("labs/attention.py: write causal_attention")
