"""
Lab 2 — Rotary position embeddings (RoPE), in the rotate-half layout.

The paper's model uses RoPE, LLaMA-2 style (paper, Architecture Tweak; ../shared/PAPER.md §2): no
learned position vectors; instead every query and key is rotated by an angle that grows with its
position, so the score q_m · k_n depends on the positions only through m - n.

A head of D channels (D even) is D/2 pairs, and pair i turns at frequency base^(-2i/D):

    angle(p, i) = p · base^(-2i/D)        p = 0, 1, ... (position 0 does not turn), i = 0 .. D/2 - 1

In the rotate-half layout (LLaMA, Hugging Face, model.py) pair i is channel i and channel i + D/2,
the two halves of the head; x1 = x[..., :D/2], x2 = x[..., D/2:] and

    out = concat(x1·cos - x2·sin,  x1·sin + x2·cos)       (a rotation by +angle)

(GPT-J and the RoFormer paper pair neighbours (0,1), (2,3), ... instead: the same idea, another
layout; weights trained in one layout fail in the other, which is why the HF export depends on it.)

Signatures:
    rope_tables(head_dim, n_pos, base=10000.0) -> (cos, sin), each (n_pos, head_dim // 2), float32
    apply_rope(x, cos, sin) -> like x;  x: (B, H, T, D), cos/sin: (T, D/2) for positions 0..T-1

Hints: torch.arange(0, D, 2) / D gives 2i/D; an outer product (positions[:, None] * freqs[None, :])
gives the (n_pos, D/2) angles; x.chunk(2, dim=-1) splits the halves; (T, D/2) broadcasts against
(B, H, T, D/2). Keep x's dtype.

Grade it:  python labs/grade.py rope        (the project's own: model.rope_tables, model.apply_rope)
"""
import torch


def rope_tables(head_dim, n_pos, base=10000.0):
    """cos and sin of angle(p, i) for p < n_pos, i < head_dim / 2: two (n_pos, head_dim // 2)."""
    raise NotImplementedError("labs/rope.py: write rope_tables")


def apply_rope(x, cos, sin):
    """Rotate pair (i, i + D/2) of every position t by angle(t, i). x (B, H, T, D) -> like x."""
    raise NotImplementedError("labs/rope.py: write apply_rope")
