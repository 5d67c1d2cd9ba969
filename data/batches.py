"""
data/batches.py — the token shards of data/prepare.py as training batches, for train.py (and anyone who
reads shards: inherit.py's calibration data).

A fixed packing of the token stream into batches, so that batches can be scored and selected (the paper's
multiple-round training, §5, in train.py) and a run can resume at the exact batch it stopped at. It costs
no memory per sequence: at 1B scale (a trillion tokens = ~490M sequences of 2048) a stored permutation
would be ~4 GB of int64 on every rank; here the shuffle is computed from (seed, index) on demand.
"""
import numpy as np
import torch


def permute(i, n, key, rounds=4):
    """Position i of a pseudo-random permutation of range(n), computed without storing the permutation: a
    Feistel network (Luby-Rackoff) is a bijection on [0, 4^h) for any round function; values that land in
    [n, 4^h) are permuted again ("cycle walking") until they fall inside [0, n), which keeps it a bijection
    of [0, n). Cost: O(1) memory; a full np.random.permutation of a trillion-token corpus's 2048-token
    sequences would be ~490M int64 = ~4 GB on EVERY rank. i: array of positions; key: `rounds` uint64s."""
    i = np.asarray(i, dtype=np.uint64)
    h = max(1, ((int(n) - 1).bit_length() + 1) // 2)                   # half-width in bits: 4^h >= n
    mask = np.uint64((1 << h) - 1)
    out, todo = i.copy(), np.ones(i.shape, dtype=bool)
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
    """The train split cut into sequences of seq_len+1 tokens (consecutive sequences share one token:
    the last target of one is the first input of the next), shuffled with the seed and grouped into N
    batches of `batch` sequences: one OPTIMIZER step's data (batch_size x grad_accum). Batch id b is always
    the same sequences, so batches can be scored and selected (multiple rounds) and a run resumes at the
    exact batch it stopped at. A step's micro-steps and DDP ranks split a batch into parts: micro-step m of
    rank r reads part m*world + r. So the data of a step depends neither on the number of processes nor on
    how the batch is split into micro-steps: 8x1, 4x2 and 2 ranks x 4 train on the same sequences.
    Nothing is stored per sequence (permute() above): memory does not grow with the corpus."""

    def __init__(self, path, dtype, seq_len, batch, seed):
        self.tokens = np.memmap(path, dtype=dtype, mode="r")
        self.T, self.B, self.seed = seq_len, batch, seed
        self.n_seq = (len(self.tokens) - 1) // seq_len
        self.n = self.n_seq // batch                                     # N: number of batches
        if self.n == 0:
            raise ValueError(f"{path} has {len(self.tokens)} tokens: fewer than one batch of {batch} x "
                             f"{seq_len}; lower --batch_size/--grad_accum/--seq_len or add text")
        self.key = perm_key(seed)

    def rows(self, batch_id, part=0, parts=1):
        """(inputs, targets), each (B/parts, T) int64: part `part` of `parts` of batch `batch_id`."""
        lo, hi = batch_id * self.B + part * self.B // parts, batch_id * self.B + (part + 1) * self.B // parts
        seqs = permute(np.arange(lo, hi), self.n_seq, self.key)
        x = np.stack([self.tokens[s * self.T:s * self.T + self.T + 1] for s in seqs]).astype(np.int64)
        return torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])

    def order(self, ids, round_, step):
        """Batch id read at optimizer step `step` of a round: epochs over `ids`, in a fresh order each epoch.
        The order is a function of (seed, round, epoch) alone, so a resumed run reads the same batches."""
        epoch, i = divmod(step, len(ids))
        return int(ids[permute([i], len(ids), perm_key(self.seed, round_, epoch))[0]])
