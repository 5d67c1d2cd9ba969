"""
data/batches.py — data/prepare.py's shards as a fixed packing of training batches (train.py, inherit.py's
calibration), so batches can be scored and selected (paper, Multiple-Round Training; ../shared/PAPER.md §5)
and a run resumes at the exact batch it stopped at; and `load_meta`, the shards' checked meta.json.
"""
import json
import os

import numpy as np
import torch


def load_meta(data_dir):
    """The shard folder's meta.json (data/prepare.py), with one-line errors naming the file and the field."""
    path = os.path.join(data_dir, "meta.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: run `python data/prepare.py` first, or point --data at its output")
    try:                                          # not JSON, or a field missing (a KeyError names it) or wrong
        meta = json.load(open(path))
        ok = meta["dtype"] in ("uint16", "uint32") and meta["splits"]["val"]["bytes"] > 0 < meta["tokenizer"]["n_vocab"]
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: field {e} is missing or wrong; re-run data/prepare.py to rewrite it") from None
    if not ok:
        raise ValueError(f"{path}: field dtype must be uint16 or uint32 (is {meta['dtype']!r}) and splits.val.bytes "
                         f"positive; re-run data/prepare.py")
    return meta


def permute(i, n, key, rounds=4):
    """Position i of a pseudo-random permutation of range(n), computed without storing the permutation: a
    Feistel network (Luby-Rackoff) is a bijection on [0, 4^h) for any round function; values that land in
    [n, 4^h) are permuted again ("cycle walking") until they fall inside [0, n), which keeps it a bijection
    of [0, n) in O(1) memory. i: array of positions; key: `rounds` uint64s."""
    out = np.array(i, dtype=np.uint64)
    h = max(1, ((int(n) - 1).bit_length() + 1) // 2)                   # half-width in bits: 4^h >= n
    mask, todo = np.uint64((1 << h) - 1), np.ones(out.shape, dtype=bool)
    with np.errstate(over="ignore"):                                     # uint64 products wrap on purpose
        while todo.any():
            left, right = out[todo] >> np.uint64(h), out[todo] & mask
            for k in key[:rounds]:                                       # round: L, R = R, L ^ F(R)
                x = right ^ k                                            # F = splitmix64's mixer
                x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                left, right = right, left ^ ((x ^ (x >> np.uint64(31))) & mask)
            out[todo] = (left << np.uint64(h)) | right
            todo = out >= np.uint64(n)
    return out.astype(np.int64)


def perm_key(*seed):
    return np.random.default_rng(list(seed)).integers(0, 2 ** 63, size=4, dtype=np.uint64)


class Batches:
    """A split cut into sequences of seq_len+1 tokens (the last target of one is the first input of the next),
    shuffled by permute() (a stored permutation of a trillion tokens: ~4 GB on every rank) and grouped into
    N batches of `batch` sequences: one OPTIMIZER step (batch_size x grad_accum). Micro-step m of DDP rank r
    reads part m*world + r of a batch, so 8x1, 4x2 and 2 ranks x 4 train on the same sequences."""

    def __init__(self, path, dtype, seq_len, batch, seed, n_vocab=None):
        self.tokens = np.memmap(path, dtype=dtype, mode="r")
        if n_vocab and len(self.tokens) <= 2 ** 30 and self.tokens.max() >= n_vocab:   # < 1 s for 2 GB of uint16
            raise ValueError(f"{path} holds ids >= its tokenizer's {n_vocab}: re-run data/prepare.py")
        self.T, self.B, self.seed, self.key = seq_len, batch, seed, perm_key(seed)
        self.n_seq = (len(self.tokens) - 1) // seq_len
        self.n = self.n_seq // batch                                     # N: number of batches
        if self.n == 0:
            raise ValueError(f"{path} has {len(self.tokens)} tokens: fewer than one batch of {batch} x "
                             f"{seq_len}; lower --batch_size/--grad_accum/--seq_len or add text")

    def rows(self, batch_id, part=0, parts=1):
        """(inputs, targets), each (B/parts, T) int64: part `part` of `parts` of batch `batch_id`."""
        lo, hi = batch_id * self.B + part * self.B // parts, batch_id * self.B + (part + 1) * self.B // parts
        seqs = permute(np.arange(lo, hi), self.n_seq, self.key)
        x = np.stack([self.tokens[s * self.T:s * self.T + self.T + 1] for s in seqs]).astype(np.int64)
        return torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])

    def order(self, ids, round_number, step):
        """Batch id of step `step` of a round: epochs over `ids`, each in an order fixed by (seed, round, epoch)."""
        epoch, i = divmod(step, len(ids))
        return int(ids[permute([i], len(ids), perm_key(self.seed, round_number, epoch))[0]])
