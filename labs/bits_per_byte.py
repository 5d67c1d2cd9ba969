"""
Lab 4 — Bits per byte, and why a per-token loss cannot compare tokenizers.

The compact tokenizer keeps fewer, shorter tokens (paper, Compact Tokenizer; ../shared/PAPER.md §1).
The same text then becomes MORE tokens, each easier to predict: the loss per token drops although
the model knows nothing more. To compare models with different tokenizers, measure the surprise of
the TEXT, not of its tokens: the total in bits, spread over the text's UTF-8 bytes (the one thing
every tokenizer shares).

    total nats = nats_per_token × n_tokens          (the mean cross-entropy is in nats: natural log)
    total bits = total nats / ln 2
    bits per byte = total bits / n_bytes            (bytes of the UTF-8 text, not characters)

Signatures (plain Python numbers in, a float out):
    bits_per_byte(nats_per_token, n_tokens, n_bytes) -> float
    utf8_bytes(text) -> int                     the n_bytes of a str
    loss_per_token_under(nats_per_token, n_tokens, other_n_tokens) -> float
        the per-token loss that the SAME model quality (the same total surprise of the same text)
        shows under a tokenizer that cuts the text into other_n_tokens tokens

Think about it: a model at 2.0 nats/token on a 1000-token text, re-tokenized into 500 longer tokens
— what does its loss per token become, and its bits per byte? Which of the two numbers did the
compact tokenizer change? (project: train.py logs val_bpb beside val_loss for this reason.)

Hints: math.log(2); "é" is one character and two UTF-8 bytes; "中" is three.

Grade it:  python labs/grade.py bits_per_byte  (the project's: tokenizer_compress.bits_per_byte)
"""
import math  # noqa: F401  (you will want math.log)


def bits_per_byte(nats_per_token, n_tokens, n_bytes):
    """Total surprise in bits over the text's UTF-8 bytes."""
    raise NotImplementedError("labs/bits_per_byte.py: write bits_per_byte")


def utf8_bytes(text):
    """How many bytes `text` takes in UTF-8."""
    raise NotImplementedError("labs/bits_per_byte.py: write utf8_bytes")


def loss_per_token_under(nats_per_token, n_tokens, other_n_tokens):
    """The per-token loss of the same total surprise when the text is other_n_tokens tokens long."""
    raise NotImplementedError("labs/bits_per_byte.py: write loss_per_token_under")
