"""data/batches.py — data/prepare.py's shards as a fixed packing of training batches (train.py,
inherit.py's calibration), so batches can be scored and selected (paper, Multiple-Round Training;
../shared/PAPER.md §5) and a run resumes at the exact batch it stopped at; and `load_meta`.
"""
import json
import os

import numpy as np
import torch


def load_meta(data_dir):
    """The shard folder's meta.json (data/prepare.py), one-line errors naming file and field."""
    path, again = os.path.join(data_dir, "meta.json"), "re-run data/prepare.py"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: run `python data/prepare.py` first (--data?)")
    try:                              # not JSON, or a field missing (a KeyError names it) or wrong
        meta = json.load(open(path))
        ok = meta["dtype"] in ("uint16", "uint32")
        ok = ok and meta["splits"]["val"]["bytes"] > 0 < meta["tokenizer"]["n_vocab"]
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: field {e} is missing or wrong; {again} to rewrite it") from None
    if not ok:
        raise ValueError(f"{path}: dtype must be uint16 or uint32, splits.val.bytes > 0; {again}")
    return meta


def permute(i, n, key, rounds=4):
    """Position i of a pseudo-random permutation of range(n), computed without storing it: a
    Feistel network (Luby-Rackoff) is a bijection on [0, 4^h) for any round function; values
    that land in [n, 4^h) are permuted again ("cycle walking") until inside [0, n): still a
    bijection, in O(1) memory. i: array of positions; key: `rounds` uint64s."""
    out = np.array(i, dtype=np.uint64)
    h = max(1, ((int(n) - 1).bit_length() + 1) // 2)              # half-width in bits: 4^h >= n
    mask, todo = np.uint64((1 << h) - 1), np.ones(out.shape, dtype=bool)
    with np.errstate(over="ignore"):                                # uint64 products wrap: wanted
        while todo.any():
            left, right = out[todo] >> np.uint64(h), out[todo] & mask
            for k in key[:rounds]:                                  # round: L, R = R, L ^ F(R)
                x = right ^ k                                       # F = splitmix64's mixer
                x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                left, right = right, left ^ ((x ^ (x >> np.uint64(31))) & mask)
            out[todo] = (left << np.uint64(h)) | right
            todo = out >= np.uint64(n)                              # walk the ones outside [0, n)
    return out.astype(np.int64)


def perm_key(*seed):                  # 4 round keys (one per Feistel round) from a tuple of ints
    return np.random.default_rng(list(seed)).integers(0, 2 ** 63, size=4, dtype=np.uint64)


class Batches:
    """A split cut into sequences of seq_len+1 tokens (one's last target is the next one's first
    input), shuffled by permute() (a stored permutation of a trillion tokens: ~4 GB per rank) into N
    batches of `batch` sequences: one OPTIMIZER step (batch_size x grad_accum). Micro-step m of DDP
    rank r reads part m*world + r of a batch: 8x1, 4x2 and 2 ranks x 4 train on the same sequences.
    contiguous: batch i is the i-th stretch of the split instead (one document or domain a batch)."""

    def __init__(self, path, dtype, seq_len, batch, seed, n_vocab=None, contiguous=False):
        self.tokens = np.memmap(path, dtype=dtype, mode="r")
        if n_vocab and len(self.tokens) <= 2 ** 30 and self.tokens.max() >= n_vocab:  # 2 GB: <1 s
            raise ValueError(f"{path} holds ids >= its tokenizer's {n_vocab}: re-run data/prepare.py")
        self.T, self.B, self.seed, self.key = seq_len, batch, seed, perm_key(seed)
        self.contiguous = contiguous
        self.n_seq = (len(self.tokens) - 1) // seq_len             # -1: the last token is no input
        self.n = self.n_seq // batch                                # N: number of batches
        if self.n == 0:
            raise ValueError(f"{path} has {len(self.tokens)} tokens: fewer than one batch of "
                             f"{batch} x {seq_len}; lower --batch_size/--grad_accum/--seq_len, or add text")

    def rows(self, batch_id, part=0, parts=1):
        """(inputs, targets), each (B/parts, T) int64: part `part` of `parts` of batch `batch_id`."""
        lo, hi = (batch_id * self.B + p * self.B // parts for p in (part, part + 1))  # b = hi - lo
        seqs, T = np.arange(lo, hi), self.T                                   # (b,) sequence ids
        seqs = seqs if self.contiguous else permute(seqs, self.n_seq, self.key)   # shuffled
        x = np.stack([self.tokens[s * T:s * T + T + 1] for s in seqs]).astype(np.int64)  # (b, T+1)
        return torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])   # targets: shifted by one

    def order(self, ids, round_number, step):
        """Batch id of step `step` of a round: epochs over `ids`, each epoch in an order fixed by
        (seed, round, epoch)."""
        epoch, i = divmod(step, len(ids))
        return int(ids[permute([i], len(ids), perm_key(self.seed, round_number, epoch))[0]])

    def visited(self, ids, round_number, steps):
        """Sorted ids that the first `steps` steps of a round train on (order()'s; all after an epoch)."""
        ids = np.asarray(ids)
        key = perm_key(self.seed, round_number, 0)                          # the first epoch's order
        return np.sort(ids if steps >= len(ids) else ids[permute(np.arange(steps), len(ids), key)])
