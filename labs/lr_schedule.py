"""
Lab 8 — The learning rate: linear warmup plus cosine decay, and lr ∝ batch^r.

Tiny models prefer moderate batches, and the learning rate moves with the batch by a power law
(paper, Batch Size and Learning Rate; ../shared/PAPER.md §4):  lr = lr0 · (batch / base_batch)^r
with r = 0.5 [reported]. The released config warms up linearly and decays by a cosine to a floor
[code].

1. The schedule (one round; W = warmup_iters, N = max_iters, floor = min_lr_ratio · peak):
       step < W:        lr = peak · (step + 1) / W     (step 0 already learns; step W-1: the peak)
       W <= step <= N:  progress = (step - W) / (N - W)
                        lr = floor + (peak - floor) · (1 + cos(π · progress)) / 2
       step > N:        lr = floor                            (progress is capped at 1)
   With W = 0 there is no warmup. If N <= W, take N - W as 1 (no division by zero).
2. The batch rule: batch_lr(lr0, batch_tokens, base_batch_tokens, r)
   = lr0 · (batch_tokens / base_batch_tokens)^r; base_batch_tokens = 0 means "this run's batch":
   no scaling.

Signatures (floats and ints in, a float out):
    lr_at(step, max_iters, peak, warmup_iters, min_lr_ratio) -> float
    batch_lr(lr0, batch_tokens, base_batch_tokens, r) -> float

Think about it: with r = 0.5, what lr goes with a batch 4x the base? Why might a square root, not a
linear rule, suit Adam? (train.py applies batch_lr once, then lr_at every step.)

Grade it:  python labs/grade.py lr_schedule   (the project's own: train.lr_at, train.batch_lr)
"""
import math  # noqa: F401


def lr_at(step, max_iters, peak, warmup_iters, min_lr_ratio):
    """Learning rate at optimizer step `step` (0-based)."""
    raise NotImplementedError("labs/lr_schedule.py: write lr_at")


def batch_lr(lr0, batch_tokens, base_batch_tokens, r):
    """Peak lr for a batch of batch_tokens tokens, lr0 having been tuned at base_batch_tokens."""
    raise NotImplementedError("labs/lr_schedule.py: write batch_lr")
