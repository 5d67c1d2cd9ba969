"""
Lab 6 — Inheritance importance: L2 and Taylor scores for heads, neurons and hidden channels.

Parameter inheritance initialises a tiny model from a larger trained one — the paper's largest
single gain (paper, Parameter Inheritance; ../shared/PAPER.md §3). Inside each kept layer the
student keeps the most important attention heads, FFN neurons and hidden channels. Reported
averages: Taylor 47.90, L2 47.00, L1 46.06, random init 42.06 [reported]. You write the two
heuristic scores, for ONE block.

A block's weights (nn.Linear layout: (out, in)); C hidden channels, H heads of D, F neurons:
    "q", "k", "v": (H·D, C)    "o": (C, H·D)    "gate", "up": (F, C)    "down": (C, F)
(plain multi-head attention here: as many kv heads as query heads.) The weights each unit owns:
    head h:     rows h·D .. (h+1)·D - 1 of q, k and v; the same columns of o
    neuron i:   row i of gate and of up; column i of down
    channel c:  column c of q, k, v, gate, up (what reads the residual stream); row c of o
                and down (what writes it); in the whole model also the embedding, head, norms.

Scores (higher = more important = kept):
    L2:      Σ w² over the unit's weights (the squared L2 norm: it ranks units as the norm does)
    Taylor:  | Σ_unit w · dL/dw |, the first-order change of the loss L if the unit were removed
             (w -> 0: ΔL ≈ -Σ w·dL/dw). L is the MEAN loss over the calibration batches, so dL/dw
             is the mean of the per-batch gradients. Average over batches and sum over the unit's
             weights FIRST, then take the absolute value (Molchanov et al. 2019): Σ|w·g| would
             count weights whose effects cancel as important.

Signatures (tensors in, a dict of 1-D tensors out):
    unit_sums(per_weight, n_head) -> {"heads": (H,), "neurons": (F,), "channels": (C,)}
        per_weight: a dict with the keys above: any per-weight number (w², w·g, ...) to sum
    l2_scores(weights, n_head) -> the same dict
    taylor_scores(weights, grads, n_head) -> the same dict; grads: one dict like weights per batch

Hints: q.view(H, D, C).sum((1, 2)) sums each head's rows; o.view(C, H, D).sum((0, 2)) its columns;
.sum(0) sums a matrix's rows (a total per column = per input channel), .sum(1) its columns.

Grade it:  python labs/grade.py importance   (the project's own: inherit.py's metrics)
"""
import torch  # noqa: F401


def unit_sums(per_weight, n_head):
    """Sum a per-weight quantity over the weights each head, neuron and channel owns."""
    raise NotImplementedError("labs/importance.py: write unit_sums")


def l2_scores(weights, n_head):
    """Σ w² per head, neuron and channel."""
    raise NotImplementedError("labs/importance.py: write l2_scores")


def taylor_scores(weights, grads, n_head):
    """|Σ over the unit's weights of w · (mean over batches of dL/dw)| per head, neuron, channel."""
    raise NotImplementedError("labs/importance.py: write taylor_scores")
