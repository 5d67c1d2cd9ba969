"""
Lab 7 — Round-2 batch selection: softmax without replacement at temperature T, topk, uniform.

Tiny models forget; training a second round helps, on data chosen by the loss (paper, Multiple-Round
Training; ../shared/PAPER.md §5). The official rule [code README]: score every training batch with
the frozen model from the end of round 1, p = softmax(losses), draw N0 batches WITHOUT replacement
with probabilities p (torch.multinomial); sampling rate N0 / N = 50% [reported]. The drawn batches
are round 2.

    n0 = max(1, round(rate × N))                  N = len(losses), rate in (0, 1]
    softmax:  draw n0 distinct batches, p_i = softmax(loss / T)_i      (T = temperature;
              T → 0: the hardest batches, T → ∞: uniform)
    topk:     the n0 highest losses (deterministic)
    uniform:  n0 distinct batches, each equally likely (the control: as much repeated data,
              no preference)

Signature:
    select_batches(losses, rate, mode, temperature=1.0, seed=0) -> numpy int array of n0 distinct
    batch indices, sorted ascending (round 2 then reads its batches in data order)
    losses: a sequence or 1-D tensor of N floats; mode: "softmax" | "topk" | "uniform"; the same
    seed gives the same selection (use torch.Generator().manual_seed(seed)); any other mode:
    ValueError.

Hints: torch.multinomial(p, n0, replacement=False, generator=g); torch.topk(...).indices;
torch.randperm(N, generator=g)[:n0]; work in float64 (losses / T can be large).

Grade it:  python labs/grade.py refine   (the project's own: train.select_batches)
"""
import numpy as np  # noqa: F401
import torch  # noqa: F401


def select_batches(losses, rate, mode, temperature=1.0, seed=0):
    """Indices (sorted, distinct) of the n0 = max(1, round(rate * N)) batches of the next round."""
    raise NotImplementedError("labs/refine.py: write select_batches")
