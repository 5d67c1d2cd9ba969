"""
Lab 5 — The compact tokenizer's plain top-K: from token counts to the kept set and the id remap.

A tiny model spends a large share of its parameters on the vocabulary (embedding + LM head,
each V × C). The paper's method (paper, Compact Tokenizer; ../shared/PAPER.md §1, [code]): tokenize
the corpus with the big BPE, count how often each token id occurs, keep the special tokens and the
K most frequent tokens, delete the rest and renumber. No retraining: text whose tokens were deleted
falls back to shorter ones.

The rules you implement (the project's plain top-K, tokenizer_compress.py):
  1. Keep all single-byte tokens FIRST, whatever their count: with every byte kept, every
     string still encodes. They count towards the K.
  2. Fill the rest of the K with the most frequent other ordinary tokens. Ties: the lower id
     first (a lower id is a lower BPE rank: an earlier merge). A token with count 0 is never
     kept (the corpus never uses it: its embedding row would never train), even if that leaves
     fewer than K.
  3. Special tokens (e.g. <|endoftext|>) are not among the K: they are appended after them.
  4. The remap: new ids follow the ORIGINAL id order (ranks are merge priorities; renumbering
     by frequency would change how words merge). new_to_old[new] = old: the kept ordinary ids
     sorted ascending, then the special ids in the order given.

Signatures:
    plain_top_k(counts, byte_ids, special_ids, K) -> new_to_old, a list of ints
        counts: int array (n_vocab,), counts[old_id]; byte_ids: the ids of the 256 single-byte
        tokens; special_ids: list of special-token ids (their counts are ignored); K: ordinary
        tokens to keep.
    remap(old_ids, new_to_old) -> list of new ids; a dropped old id raises KeyError.

Hints: numpy.argsort(-counts, kind="stable") orders by count, ties by id; a set for membership.
This project adds two repairs the paper's release lacks (merge closure and dead-token refill); they
are not part of this lab.

Grade it:  python labs/grade.py compact_vocab  (the project's: tokenizer_compress.plain_top_k)
"""
import numpy as np  # noqa: F401


def plain_top_k(counts, byte_ids, special_ids, K):
    """new_to_old of the compact vocabulary: kept ordinary ids ascending, then the specials."""
    raise NotImplementedError("labs/compact_vocab.py: write plain_top_k")


def remap(old_ids, new_to_old):
    """The new id of each old id (KeyError for an id that was dropped)."""
    raise NotImplementedError("labs/compact_vocab.py: write remap")
