"""
labs/grade.py — grade a lab: PASS or FAIL per check, with a reason you can act on.

    python labs/grade.py rope                 # grades labs/rope.py
    python labs/grade.py --all                # every lab, in course order
    python labs/grade.py rope --solution      # the same checks on the project's own code

The checks never compare you with the project's code. They use values worked out by hand (in
the comments: read them when a check fails), a second method (autograd, complex numbers,
explicit loops) and properties the answer must have (exact sizes, no repeats, causality, the
gradient). Where a wrong answer is a common one (RoPE interleaved, kv heads repeated in the
wrong order, bits per token...), the reason names it. The exit code is 0 only when every check
passes; a lab skipped for want of a GPU is no failure.

--solution runs the project's functions through the small adapters in SOLUTIONS: the lab's
signature on one side, the project's on the other. If a project function moves, its adapter
is the one place to fix.
"""
import argparse
import importlib.util
import math
import os
import sys
import traceback
from types import SimpleNamespace

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))    # --solution imports the project's scripts
LABS = {   # name -> what it is about, in course order (the lab's file is labs/<name>.py)
    "rmsnorm": "RMSNorm forward and backward as a torch.autograd.Function",
    "rope": "rotary position embeddings, rotate-half layout",
    "attention": "causal attention with grouped-query heads",
    "bits_per_byte": "bits per byte, and why per-token loss cannot compare tokenizers",
    "compact_vocab": "the compact tokenizer's plain top-K and id remap",
    "importance": "inheritance importance: L2 and Taylor scores",
    "refine": "round-2 batch selection: softmax without replacement, topk, uniform",
    "lr_schedule": "warmup + cosine, and lr ∝ batch^r",
    "triton_rmsnorm": "(GPU) the Triton RMSNorm forward kernel",
}
F64 = torch.float64
# Triton's CPU interpreter as the user started us. (The RMSNorm solution switches it on for
# itself: on CPU the project's kernel runs only there; Triton reads it at import and launch.)
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


class Fail(Exception):
    """A check failed; the message is the one-line reason shown to the student."""


def need(ok, reason):
    if not ok:
        raise Fail(reason)


def near(a, b, tol=1e-5):
    """Whether a and b (tensors, lists, numbers) agree elementwise within tol (abs. + rel.)."""
    a, b = (torch.as_tensor(t).detach().to(F64).cpu() for t in (a, b))
    return a.shape == b.shape and torch.allclose(a, b, atol=tol, rtol=tol)


def show(t, digits=4):
    """A short printable form of a tensor or list, for reasons: [1.235, 0.5]."""
    vals = torch.as_tensor(t).detach().to(F64).flatten().tolist()
    more = ", ...]" if len(vals) > 6 else "]"
    return "[" + ", ".join(f"{v:.{digits}g}" for v in vals[:6]) + more


def diagnose(got, expected, wrong_answers, default, tol=1e-5):
    """Pass if got equals expected; else fail with the reason of the first known wrong answer
    it equals, or with `default`. wrong_answers: [(what a mistake produces, what to tell)]."""
    if near(got, expected, tol):
        return
    for value, reason in wrong_answers:
        need(not near(got, value, tol), reason)
    raise Fail(default)


# ==== Lab 1: RMSNorm forward and backward (labs/rmsnorm.py).
def reference_rmsnorm(x, w, eps):
    """The definition; in float64, differentiated by autograd, it gives the expected values."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def checks_rmsnorm(lab):
    """RMSNorm: two forwards worked by hand (the norm and eps placement), a batched forward,
    and the backward against autograd, with the mean term of dx named when it is missing."""
    def forward_by_hand():
        # x = [3, 4]: mean(x²) = (9 + 16) / 2 = 12.5, rms = 3.5355; w = [2, 0.5], eps = 0:
        # y = [3 / 3.5355 · 2, 4 / 3.5355 · 0.5] = [1.6971, 0.5657].
        # Dividing by the norm sqrt(Σx²) = 5 gives [1.2, 0.4]; forgetting w, [0.8485, 1.1314].
        y = lab.rms_norm(torch.tensor([[3.0, 4.0]]), torch.tensor([2.0, 0.5]), 0.0)
        need(tuple(y.shape) == (1, 2), f"y has shape {tuple(y.shape)}; it must have x's, (1, 2)")
        diagnose(y, [[1.6971, 0.5657]], [
            ([[1.2, 0.4]], "you divided by the norm sqrt(Σx²); RMSNorm divides by sqrt(MEAN(x²))"),
            ([[0.8485, 1.1314]], "the weight w is not applied: y = x · rstd · w")],
            f"x=[3,4], w=[2,0.5], eps=0 gave {show(y)}; expected [1.6971, 0.5657]", 1e-4)

    def eps_inside_sqrt():
        # x = [0.003, 0.004]: mean(x²) = 12.5e-6, + eps 1e-5 = 22.5e-6, sqrt = 4.7434e-3:
        # y = [0.63246, 0.84327]. eps after the root: 0.003 / (3.5355e-3 + 1e-5) = 0.84609.
        y = lab.rms_norm(torch.tensor([[0.003, 0.004]]), torch.ones(2), 1e-5)
        diagnose(y, [[0.63246, 0.84327]], [
            ([[0.84609, 1.12812]], "eps goes INSIDE the square root: 1 / sqrt(mean(x²) + eps)")],
            f"x=[0.003,0.004], eps=1e-5 gave {show(y)}; expected [0.63246, 0.84327]", 1e-4)

    def forward_leading_dims():
        # Any number of leading dims: each row of C numbers is normalised on its own.
        torch.manual_seed(0)
        x, w = torch.randn(2, 3, 8), torch.randn(8)
        need(near(lab.rms_norm(x, w, 1e-5), reference_rmsnorm(x.to(F64), w.to(F64), 1e-5)),
             "wrong on x of shape (2, 3, 8): normalise each row over the LAST dim (keepdim=True)")

    def gradients():
        # Your backward against autograd's derivative of the definition; the two usual slips
        # (no term through rstd; a sum where the mean goes) get their own reason.
        torch.manual_seed(1)
        x, w, dy = torch.randn(2, 3, 8), torch.randn(8), torch.randn(2, 3, 8)
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        lab.rms_norm(xs, ws, 1e-5).backward(dy)
        need(xs.grad is not None and ws.grad is not None,
             "backward returned None for x or weight: return (dx, dw, None)")
        x64, w64 = x.to(F64).requires_grad_(), w.to(F64).requires_grad_()
        reference_rmsnorm(x64, w64, 1e-5).backward(dy.to(F64))
        rstd = torch.rsqrt(x.to(F64).pow(2).mean(-1, keepdim=True) + 1e-5)         # (2, 3, 1)
        xhat, g = x.to(F64) * rstd, w.to(F64) * dy.to(F64)                          # (2, 3, 8)
        diagnose(xs.grad, x64.grad, [
            (rstd * g, "dx misses the term that comes through rstd (every x_i changes rstd): "
                       "dx = rstd · (g - xhat · mean(g · xhat)), g = w · dy"),
            (rstd * (g - xhat * (g * xhat).sum(-1, keepdim=True)),
             "dx: take the MEAN over the C channels of g · xhat, not the sum")],
            "dx differs from autograd's: dx = rstd · (g - xhat · mean(g · xhat)), g = w · dy",
            1e-4)
        diagnose(ws.grad, w64.grad, [
            ((dy * x).sum((0, 1)), "dw = Σ_rows dy · xhat: multiply dy by the NORMALISED x")],
            "dw differs from autograd's: dw = Σ over all rows (all leading dims) of dy · xhat",
            1e-4)

    return [("forward, worked by hand", forward_by_hand),
            ("eps inside the square root", eps_inside_sqrt),
            ("forward over leading dims (2, 3, 8)", forward_leading_dims),
            ("backward: dx and dw against autograd", gradients)]


# ==== Lab 2: RoPE, rotate-half (labs/rope.py).
def checks_rope(lab):
    """RoPE: the tables by hand, the rotate-half pairing and each position's angle on unit
    vectors, a second method (complex multiplication), and the relative-position property."""
    D, T, base = 4, 6, 100.0
    # angle(p, i) = p · base^(-2i/D): with D = 4, base = 100 the two pairs turn 1 and 0.1 rad
    # per position.
    angles = torch.arange(T, dtype=F64)[:, None] * torch.tensor([1.0, 0.1], dtype=F64)  # (T, 2)
    cos, sin = angles.cos().float(), angles.sin().float()

    def tables():
        # Shapes, dtype, position 0 unturned, and the angle of every (position, pair) by hand:
        # sin(p · 1) and sin(p · 0.1) for p = 0..5.
        got_cos, got_sin = lab.rope_tables(D, T, base)
        need(tuple(got_cos.shape) == (T, D // 2) == tuple(got_sin.shape),
             f"rope_tables({D}, {T}) gave shapes {tuple(got_cos.shape)}, "
             f"{tuple(got_sin.shape)}; expected ({T}, {D // 2}) each")
        need(got_cos.dtype == torch.float32, f"the tables are {got_cos.dtype}; make them float32")
        need(near(got_cos[0], [1, 1]) and near(got_sin[0], [0, 0]),
             f"position 0 must not turn (cos 1, sin 0), got cos {show(got_cos[0])}: "
             f"positions start at 0")
        # A frequency base^(-i/D) instead of base^(-2i/D): pair 1 turns 0.1 ** 0.5 rad per step.
        slow = torch.arange(T, dtype=F64)[:, None] * torch.tensor([1.0, 0.1 ** 0.5], dtype=F64)
        diagnose(got_sin, angles.sin(), [
            (slow.sin(), "pair i turns at base^(-2i/D), not base^(-i/D)")],
            f"position 3, pair 1 turns by 3 · 100^(-2/4) = 0.3 rad: sin should be 0.2955, "
            f"got {got_sin[3, 1]:.4f}")

    def rotate_half_pairs():
        # Channel 0 = 1, the rest 0, at every position: rotate-half pairs channel 0 with
        # channel 2, so position t comes out as cos θ_t in channel 0 and sin θ_t in channel 2
        # (θ_t = t rad, pair 0). Interleaved pairs (0, 1) put the sine in channel 1; a
        # rotation by -θ gives -sin θ; a shifted table, the angle of another position.
        x = torch.zeros(1, 1, T, D)
        x[..., 0] = 1
        out = lab.apply_rope(x, cos, sin)[0, 0].to(F64)                              # (T, D)
        need(tuple(out.shape) == (T, D), f"apply_rope changed the shape to {tuple(out.shape)}")
        need(not (near(out[:, 1], angles[:, 0].sin()) and near(out[:, 2], torch.zeros(T))),
             "channels are paired as neighbours (0,1), (2,3): that is the interleaved GPT-J "
             "layout; pair channel i with channel i + D/2 (rotate-half, LLaMA/HF)")
        need(not near(out[:, 2], -angles[:, 0].sin()),
             "rotated by -θ: out = (x1·cos - x2·sin, x1·sin + x2·cos)")

        def turned(t, s):        # did position t get the rotation of position s?
            return near(out[t, 0], angles[s, 0].cos()) and near(out[t, 2], angles[s, 0].sin())
        for t in range(T):
            if not turned(t, t):
                other = [s for s in range(T) if turned(t, s)]
                if other:
                    raise Fail(f"position {t} rotated by the angle of position {other[0]}")
                raise Fail(f"position {t}: channel 0 = 1 should become cos {t}, sin {t} in "
                           f"channels 0 and 2; got {show(out[t])}")

    def matches_complex_rotation():
        # A second method: pair (x_i, x_{i+D/2}) as the complex number x_i + j·x_{i+D/2},
        # multiplied by e^{jθ}: real part -> first half, imaginary part -> second half.
        torch.manual_seed(2)
        x = torch.randn(2, 3, T, D, dtype=F64)
        turn = torch.polar(torch.ones_like(angles), angles)                        # e^{jθ}
        z = torch.complex(x[..., :D // 2], x[..., D // 2:]) * turn
        need(near(lab.apply_rope(x.float(), cos, sin), torch.cat((z.real, z.imag), -1)),
             "random (2, 3, 6, 4) input: not each pair (i, i + D/2) rotated by its angle "
             "(do the (T, D/2) tables broadcast over batch and heads?)")

    def relative_positions():
        # The point of RoPE: q_m · k_n depends on m - n only. The same q and k at every
        # position, your own tables: the score of (5, 3) must equal that of (2, 0).
        torch.manual_seed(3)
        cos8, sin8 = lab.rope_tables(8, 8, 10000.0)
        q, k = (torch.randn(1, 1, 1, 8).expand(1, 1, 8, 8) for _ in range(2))
        q, k = lab.apply_rope(q, cos8, sin8)[0, 0], lab.apply_rope(k, cos8, sin8)[0, 0]
        scores = (q @ k.T).to(F64)                                                  # (8, 8)
        need(near(scores[5, 3], scores[2, 0], 1e-4) and near(scores[7, 1], scores[6, 0], 1e-4),
             f"q_5·k_3 = {scores[5, 3]:.4f} but q_2·k_0 = {scores[2, 0]:.4f}: after RoPE a "
             f"score must depend on m - n only")

    return [("rope_tables: angle p · base^(-2i/D)", tables),
            ("apply_rope: rotate-half pairs, each position", rotate_half_pairs),
            ("apply_rope = complex rotation of each pair", matches_complex_rotation),
            ("scores depend on relative position only", relative_positions)]


# ==== Lab 3: causal attention with grouped-query heads (labs/attention.py).
def reference_attention(q, k, v):
    """Explicit loops, float64: query head h reads kv head h // g; position i sees keys 0..i."""
    B, H, T, D = q.shape
    g, out = H // k.size(1), torch.zeros_like(q, dtype=F64)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                s = torch.stack([q[b, h, i] @ k[b, h // g, j] / math.sqrt(D) for j in range(i + 1)])
                out[b, h, i] = torch.softmax(s, 0) @ v[b, h // g, :i + 1]
    return out


def checks_attention(lab):
    """Attention: three small cases worked by hand (causal average, scale, GQA head order),
    causality as a property, and random shapes against an explicit triple loop."""
    def running_mean():
        # q = k = 0: every visible key scores the same, so position t averages v_0..v_t:
        # v = 1, 3, 5 -> 1, 2, 3. Without the causal mask each position averages all: 3, 3, 3.
        q = torch.zeros(1, 1, 3, 2, dtype=F64)
        v = torch.tensor([1.0, 3.0, 5.0], dtype=F64)[None, None, :, None].expand(1, 1, 3, 2)
        out = lab.causal_attention(q, q.clone(), v)
        need(tuple(out.shape) == (1, 1, 3, 2),
             f"output shape {tuple(out.shape)}; expected (B, H, T, D) = (1, 1, 3, 2)")
        diagnose(out[0, 0, :, 0], [1, 2, 3], [
            ([3, 3, 3], "position 0 sees future keys: mask j > i with -inf before the softmax")],
            f"equal scores: position t must average v_0..v_t = [1, 2, 3]; "
            f"got {show(out[0, 0, :, 0])}")

    def scale():
        # Position 1: k_0 = 0, k_1 = q_1 = (1,1,1,1): s = (0, 4 / sqrt(4)) = (0, 2); with
        # v = 0, 1: out = e² / (1 + e²) = sigmoid(2) = 0.8808.
        # Unscaled: sigmoid(4) = 0.9820; divided by D: sigmoid(1) = 0.7311.
        q = torch.tensor([[0.0] * 4, [1.0] * 4], dtype=F64)[None, None]
        got = lab.causal_attention(q, q.clone(), q.clone())[0, 0, 1, 0]
        diagnose(got, 0.8808, [(0.9820, "scores are not scaled: divide q·k by sqrt(D)"),
                               (0.7311, "scores divided by D: divide q·k by sqrt(D)")],
                 f"s = (0, 2) should give sigmoid(2) = 0.8808 at position 1; got {got:.4f}", 1e-4)

    def causality():
        # Change the key and value at position 4: no output before position 4 may move.
        torch.manual_seed(4)
        q, k, v = (torch.randn(1, 2, 6, 4, dtype=F64) for _ in range(3))
        before = lab.causal_attention(q, k, v)
        k2, v2 = k.clone(), v.clone()
        k2[:, :, 4] += 5
        v2[:, :, 4] -= 5
        after = lab.causal_attention(q, k2, v2)
        for t in range(4):
            need(near(before[:, :, t], after[:, :, t]),
                 f"the output at position {t} changed when the key at position 4 changed: "
                 f"position i may see keys j <= i only")

    def grouped_heads():
        # H = 4 query heads, Hkv = 2: heads 0,1 read kv head 0 (v = 0), heads 2,3 kv head 1
        # (v = 1). Softmax weights sum to 1, so each head outputs its kv head's constant v:
        # [0, 0, 1, 1]. k.repeat(1, 2, 1, 1) orders the kv heads 0, 1, 0, 1: [0, 1, 0, 1].
        torch.manual_seed(5)
        q, k = torch.randn(1, 4, 3, 2, dtype=F64), torch.randn(1, 2, 3, 2, dtype=F64)
        v = torch.tensor([0.0, 1.0], dtype=F64)[None, :, None, None].expand(1, 2, 3, 2)
        got = lab.causal_attention(q, k, v)[0, :, -1, 0]
        diagnose(got, [0, 0, 1, 1], [
            ([0, 1, 0, 1], "query head 1 read kv head 1: consecutive query heads share a kv "
                           "head (h // g): repeat_interleave, not repeat")],
            f"with kv values (0, 1), query heads 0..3 should output [0, 0, 1, 1]; "
            f"got {show(got)}")

    def against_loops():
        # Random inputs against the loop-by-loop definition, for MHA, GQA and one kv head.
        torch.manual_seed(6)
        for hkv in (4, 2, 1):
            q, k, v = (torch.randn(2, h, 5, 8, dtype=F64) for h in (4, hkv, hkv))
            need(near(lab.causal_attention(q, k, v), reference_attention(q, k, v)),
                 f"B=2, H=4, Hkv={hkv}, T=5, D=8: the output differs from the definition")

    return [("position t averages v_0..v_t (hand)", running_mean),
            ("scores scaled by 1/sqrt(D)", scale),
            ("causality: the future changes nothing", causality),
            ("query head h reads kv head h // g", grouped_heads),
            ("random shapes, Hkv = 4, 2, 1, against explicit loops", against_loops)]


# ==== Lab 4: bits per byte (labs/bits_per_byte.py).
def checks_bits_per_byte(lab):
    """Bits per byte by hand; its invariance under re-tokenization (the point of the lab); bytes
    not characters; and how the per-token loss moves when only the tokenizer changes."""
    def by_hand():
        # 2.0 nats/token × 1000 tokens = 2000 nats = 2000 / ln 2 = 2885.4 bits;
        # over 4000 bytes: 0.72135 bits per byte.
        got = float(lab.bits_per_byte(2.0, 1000, 4000))
        diagnose(got, 0.72135, [
            (2 / math.log(2), "you returned bits per TOKEN: spread the total bits over n_bytes"),
            (0.5, "those are nats per byte: divide by ln 2 to get bits"),
            (0.5 * math.log(2), "multiply nats by 1 / ln 2 (= log2 e), not by ln 2")],
            f"2.0 nats/token, 1000 tokens, 4000 bytes gave {got:.5f}; "
            f"expected 2000 / ln 2 / 4000 = 0.72135", 1e-4)

    def same_text_two_tokenizers():
        # The lab's point: a finer tokenizer lowers the loss per token, not the bits per byte.
        # The same text (4000 bytes) and total surprise (2000 nats), cut into 1000 or 500 tokens.
        a, b = float(lab.bits_per_byte(2.0, 1000, 4000)), float(lab.bits_per_byte(4.0, 500, 4000))
        need(abs(a - b) < 1e-9, f"the same text with the same total surprise gave {a:.4f} and "
                                f"{b:.4f} bits per byte: how the text is cut into tokens must "
                                f"not matter")

    def utf8():
        # ASCII is 1 byte a character; é is 2 (U+00E9); each Chinese character here is 3.
        got = [lab.utf8_bytes(s) for s in ("abc", "héllo", "中文")]
        diagnose(got, [3, 6, 6], [
            ([3, 5, 2], "you counted characters: 'é' is 2 bytes in UTF-8, '中' 3 "
                        "(len(text.encode('utf-8')))")],
            f"'abc', 'héllo', '中文' gave {got}; expected [3, 6, 6] UTF-8 bytes")

    def per_token_moves():
        # 2.0 nats/token × 1000 tokens = 2000 nats; in 500 tokens: 4.0 nats/token; in 2000: 1.0.
        got = [float(lab.loss_per_token_under(2.0, 1000, n)) for n in (500, 2000)]
        diagnose(got, [4.0, 1.0], [
            ([2.0, 2.0], "the total surprise is fixed, not the per-token loss: fewer, longer "
                         "tokens each carry more of it")],
            f"2.0 nats/token × 1000 tokens re-cut into 500 and 2000 tokens gave {got}; "
            f"expected [4, 1]")

    return [("bits per byte, worked by hand", by_hand),
            ("independent of the tokenization", same_text_two_tokenizers),
            ("UTF-8 bytes, not characters", utf8),
            ("the per-token loss moves with the tokenizer", per_token_moves)]


# ==== Lab 5: the compact tokenizer's plain top-K (labs/compact_vocab.py). The ids are
#      cl100k_base's, so that the project's function runs on the same input: ids 0..255 are
#      its 256 single bytes, 100,256 is no token, 100,257 is <|endoftext|>; 100,277 ids.
N_VOCAB, BYTES, EOT = 100_277, list(range(256)), 100_257


def hand_counts():
    """Bytes: id 7 never occurs, the others 100 each; multi-byte: 500 and 1000 (90 each), 300
    (50), 7000 (10); <|endoftext|> 1000 (a special: never ranked); all else 0."""
    counts = np.zeros(N_VOCAB, np.int64)
    counts[BYTES] = 100
    counts[7] = 0
    counts[[300, 500, 1000, 7000, EOT]] = [50, 90, 90, 10, 1000]
    return counts


def checks_compact_vocab(lab):
    """Plain top-K on hand-made counts (bytes first, specials last, id order, ties, zeros),
    random counts against a sort done here, and the id remap."""
    def by_hand():
        # K = 259: the 256 bytes (byte 7 too, though it never occurs) + the 3 most frequent
        # others, 500 and 1000 (90) and 300 (50), in ascending id order; then <|endoftext|>.
        got = [int(i) for i in lab.plain_top_k(hand_counts(), BYTES, [EOT], 259)]
        need(7 in got, "single bytes first: byte id 7 (count 0) was dropped; keep all 256 so "
                       "every string still encodes")
        need(got.count(EOT) == 1 and got[-1] == EOT, "<|endoftext|> must come once, after "
                                                     "the K ordinary ids (specials are not "
                                                     "among the K)")
        need(len(got) == 260, f"got {len(got) - 1} ordinary ids for K = 259: the 256 bytes "
                              f"count towards the K")
        need(got[:-1] == sorted(got[:-1]), "new ids must follow the old id order (ranks are "
                                           "merge priorities), not the frequency order")
        need(got == BYTES + [300, 500, 1000, EOT],
             f"K = 259 should keep the bytes + 300, 500, 1000 (the 3 most frequent); got the "
             f"bytes + {got[256:-1]}")

    def ties_and_zeros():
        # K = 257: one slot for 500 and 1000, both 90: the lower id (an earlier merge) wins.
        got = [int(i) for i in lab.plain_top_k(hand_counts(), BYTES, [EOT], 257)]
        need(got[256:] == [500, EOT], f"ties go to the lower id: K = 257 adds 500 (90) before "
                                      f"1000 (90); got {got[256:-1]}")
        # K = 300: only 4 multi-byte tokens occur, so 260 ordinary ids, not 300.
        got = [int(i) for i in lab.plain_top_k(hand_counts(), BYTES, [EOT], 300)]
        unused = [i for i in got if i not in BYTES and i != EOT and hand_counts()[i] == 0]
        need(not unused, f"token {unused[:1]} has count 0 and was kept: a token the corpus "
                         f"never uses is an embedding row that never trains; keep fewer than K")

    def random_counts():
        # Zipf-like counts over the whole vocabulary, a third of them 0; K = 2000 = 256 + 1744.
        rng = np.random.default_rng(0)
        counts = rng.zipf(1.5, N_VOCAB).astype(np.int64) * (rng.random(N_VOCAB) < 0.66)
        counts[EOT - 1:] = 0                 # 100,256 is no token; the specials follow it
        got = [int(i) for i in lab.plain_top_k(counts, BYTES, [EOT], 2000)]
        need(len(got) == 2001 and len(set(got)) == 2001,
             f"K = 2000: expected 2000 distinct ids + <|endoftext|>, got {len(got)} "
             f"({len(set(got))} distinct)")
        by_count = np.lexsort((np.arange(N_VOCAB), -counts)).tolist()   # count down, then id up
        ranked = [i for i in by_count if i >= 256 and counts[i] > 0]
        need(set(got[:-1]) - set(BYTES) == set(ranked[:1744]),
             "K = 2000 on random counts: the 1744 non-byte ids are not the most frequent ones "
             "(ties: the lower id)")

    def id_remap():
        # The new id of an old one is its position in new_to_old; a dropped id has none.
        new_to_old = BYTES + [300, 500, 1000, EOT]
        got = [int(i) for i in lab.remap([0, 300, 1000, EOT], new_to_old)]
        need(got == [0, 256, 258, 259], f"remap([0, 300, 1000, 100257]) gave {got}; expected "
                                        f"[0, 256, 258, 259]: the position in new_to_old")
        try:
            lab.remap([7000], new_to_old)
        except KeyError:
            return
        raise Fail("remap of a dropped id (7000) must raise KeyError, not return a number")

    return [("K = 259, worked by hand", by_hand), ("ties and never-used tokens", ties_and_zeros),
            ("random counts: sizes, no repeats, the top ids", random_counts),
            ("the id remap", id_remap)]


# ==== Lab 6: inheritance importance (labs/importance.py).
def hand_block():
    """One block: H = 2 heads of D = 2, C = 4 hidden channels, F = 2 neurons; most weights 0."""
    w = {k: torch.zeros(4, 4, dtype=F64) for k in ("q", "k", "v", "o")}
    w.update(gate=torch.zeros(2, 4, dtype=F64), up=torch.zeros(2, 4, dtype=F64),
             down=torch.zeros(4, 2, dtype=F64))
    # Each weight below adds its square to one head or neuron and to one channel:
    w["q"][0, :2] = torch.tensor([1.0, 2.0])  # head 0's q row 0: 1 + 4 = 5; channel 0 +1, 1 +4
    w["v"][2, 0] = 3.0                        # head 1's v row 2: 9;  channel 0 +9
    w["o"][0, 3] = 1.0                        # head 1's o column 3 (row 0): head 1 +1, ch. 0 +1
    w["gate"][0, 0] = 1.0                     # neuron 0's gate row: neuron 0 +1, channel 0 +1
    w["up"][1, 1] = 2.0                       # neuron 1's up row: neuron 1 +4, channel 1 +4
    w["down"][1, 0] = 1.0                     # neuron 0's down column (row 1): n. 0 +1, ch. 1 +1
    return w        # L2 scores: heads [5, 10], neurons [2, 4], channels [12, 9, 0, 0]


def reference_unit_sums(per, H):
    """Unit by unit, with explicit slices: the weights each head, neuron and channel owns."""
    D, C, n_neurons = per["q"].size(0) // H, per["q"].size(1), per["gate"].size(0)
    rows = lambda h: slice(h * D, (h + 1) * D)                                     # noqa: E731
    heads = [sum(per[m][rows(h)].sum() for m in "qkv") + per["o"][:, rows(h)].sum()
             for h in range(H)]
    neurons = [per["gate"][i].sum() + per["up"][i].sum() + per["down"][:, i].sum()
               for i in range(n_neurons)]
    channels = [sum(per[m][:, c].sum() for m in ("q", "k", "v", "gate", "up"))
                + per["o"][c].sum() + per["down"][c].sum() for c in range(C)]
    return {"heads": torch.stack(heads), "neurons": torch.stack(neurons),
            "channels": torch.stack(channels)}


def random_block(seed, H=2, D=2, C=4, n_neurons=6):
    """Random weights (or gradients) of a block; H·D = C, as in the project's models."""
    g = torch.Generator().manual_seed(seed)
    shapes = dict(q=(H * D, C), k=(H * D, C), v=(H * D, C), o=(C, H * D),
                  gate=(n_neurons, C), up=(n_neurons, C), down=(C, n_neurons))
    return {k: torch.randn(*s, generator=g, dtype=F64) for k, s in shapes.items()}


def check_units(got, want, what, wrong=()):
    """Compare the three score vectors and name the kind of unit that is wrong."""
    for kind in ("heads", "neurons", "channels"):
        need(kind in got, f"{what}: no {kind!r} in the result (a dict of heads, neurons, "
                          f"channels)")
        diagnose(got[kind], want[kind], [(w[kind], why) for w, why in wrong if kind in w],
                 f"{what}: {kind} scores {show(got[kind])}, expected {show(want[kind])}", 1e-6)


def checks_importance(lab):
    """L2 on a block whose scores were worked out by hand, unit sums against per-unit slices,
    and Taylor where |Σ w·g|, Σ|w·g| and |.| per batch all give different answers."""
    def l2_by_hand():
        # The values worked out in hand_block: heads [5, 10], neurons [2, 4],
        # channels [12, 9, 0, 0]. The usual slips each change one of them.
        want = {"heads": [5, 10], "neurons": [2, 4], "channels": [12, 9, 0, 0]}
        check_units(lab.l2_scores(hand_block(), 2), want, "L2 on the hand-made block", [
            ({"heads": [5, 1]}, "head 1 ignores its k and v rows: a head owns its q, k, v rows "
                                "and o columns"),
            ({"heads": [math.sqrt(5), math.sqrt(10)]}, "return Σw² (the squared norm: the same "
                                                       "ranking), not the norm"),
            ({"neurons": [1, 4]}, "neuron 0 ignores its column of down"),
            ({"channels": [11, 8, 0, 0]}, "channels: add the rows of o and down (the weights "
                                          "that write them)")])

    def unit_sums_random():
        # Every weight of a random block against the unit-by-unit slices of reference_unit_sums.
        w = random_block(7)
        check_units(lab.unit_sums(w, 2), reference_unit_sums(w, 2),
                    "unit_sums of a random (H=2, D=2, C=4, F=6) block")

    def taylor_by_hand():
        # L = the mean of the two batch losses, so dL/dw = (g1 + g2) / 2.
        # Head 0's q row w = (1, 1), gradients (1, -1) and (1, 0): dL/dw = (1, -0.5);
        #   |Σ w·dL/dw| = 0.5; element-wise Σ|w·dL/dw| = 1 + 0.5 = 1.5.
        # Head 1's q row w = (2, 0), gradients (1, 0) and (-1, 0): dL/dw = 0, score 0;
        #   |.| taken per batch: (2 + 2) / 2 = 2. Summed gradients, not averaged: [1, 0].
        w = {k: v.zero_() for k, v in hand_block().items()}
        w["q"][0, :2], w["q"][2, 0] = torch.tensor([1.0, 1.0]), 2.0
        g1, g2 = ({k: torch.zeros_like(v) for k, v in w.items()} for _ in range(2))
        g1["q"][0, :2], g1["q"][2, 0] = torch.tensor([1.0, -1.0]), 1.0
        g2["q"][0, 0], g2["q"][2, 0] = 1.0, -1.0
        got = lab.taylor_scores(w, [g1, g2], 2)
        element = ("you summed |w·g| element-wise: take |Σ w·g| over the unit's weights "
                   "(effects that cancel leave the loss unchanged)")
        diagnose(got["heads"], [0.5, 0], [
            ([1.5, 0], element), ([1.5, 2], element),
            ([1, 0], "L is the MEAN loss over the batches: average the gradients, do not add"),
            ([0.5, 2], "abs taken per batch: accumulate w·g over the batches first, then |.|")],
            f"hand-made Taylor heads {show(got['heads'])}, expected [0.5, 0] = "
            f"|Σ_unit w · mean_batches(g)|")

    def taylor_random():
        # Three calibration batches of random gradients: the score is |unit sum of w · mean g|.
        w, grads = random_block(8), [random_block(9 + b) for b in range(3)]
        first_order = {k: w[k] * sum(g[k] for g in grads) / 3 for k in w}        # w · dL/dw
        signed = reference_unit_sums(first_order, 2)
        element = reference_unit_sums({k: v.abs() for k, v in first_order.items()}, 2)
        check_units(lab.taylor_scores(w, grads, 2), {k: v.abs() for k, v in signed.items()},
                    "Taylor on a random block", [
                        (signed, "take |.| of the sum: rank by how much removal changes the loss"),
                        (element, "you summed |w·g| element-wise: take |Σ w·g| per unit")])

    return [("L2, worked by hand", l2_by_hand), ("unit sums on a random block", unit_sums_random),
            ("Taylor, worked by hand", taylor_by_hand), ("Taylor on a random block", taylor_random)]


# ==== Lab 7: round-2 batch selection (labs/refine.py).
def picks(lab, losses, rate, mode, temperature=1.0, seed=0):
    """The selection as a list of ints, checked for what every mode must give: n0 distinct
    indices in range, sorted."""
    chosen = lab.select_batches(losses, rate, mode, temperature, seed)
    got = [int(i) for i in np.asarray(chosen).tolist()]
    n0 = max(1, round(rate * len(losses)))
    repeated = sorted({i for i in got if got.count(i) > 1})
    need(not repeated, f"{mode}: batch {repeated[:1]} was drawn twice: draw WITHOUT replacement")
    need(len(got) == n0, f"{mode}, N = {len(losses)}, rate {rate}: {len(got)} batches, "
                         f"expected n0 = max(1, round(rate·N)) = {n0}")
    need(all(0 <= i < len(losses) for i in got), f"{mode}: an index out of range in {got}")
    need(got == sorted(got), f"{mode}: return the indices sorted (round 2 reads them in data "
                             f"order); got {got}")
    return got


def frequency(lab, losses, rate, mode, temperature, item, n=2000):
    """How often batch `item` is selected over n seeds."""
    return sum(item in picks(lab, losses, rate, mode, temperature, seed) for seed in range(n)) / n


def checks_refine(lab):
    """Selection: sizes and no repeats in every mode, topk exactly, softmax probabilities
    computed by hand and measured over seeds, the limits of T, uniform, determinism."""
    losses = [2.0, 0.5, 3.0, 1.0, 2.5, 0.1, 4.0, 1.5, 0.7, 3.5]

    def sizes_and_repeats():
        # A batch with loss 30 takes nearly all of the softmax: drawn with replacement, it repeats.
        for n, rate in ((10, 0.5), (7, 0.3), (10, 1.0), (3, 0.01)):
            for mode in ("topk", "uniform", "softmax"):
                picks(lab, [1.0] * (n - 1) + [30.0], rate, mode)

    def topk():
        # Deterministic: the 3 largest of the 10 losses above, whatever the seed.
        got = picks(lab, losses, 0.3, "topk")
        need(got == [2, 6, 9], f"topk, rate 0.3 of 10: the 3 highest losses are batches 2, 6, 9 "
                               f"(3.0, 4.0, 3.5); got {got}")

    def softmax_probability():
        # N = 2, n0 = 1: P(batch 1) = softmax(loss / T)_1. Losses (0, ln 3): T = 1 -> 3/4 = 0.75;
        # T = 2 -> sqrt(3) / (1 + sqrt(3)) = 0.634 (loss · T instead of loss / T: 9/10 = 0.9).
        # Over 2000 seeds a frequency has a standard error of ~0.01: 0.035 is 3.5 of them.
        for temperature, want in ((1.0, 0.75), (2.0, 0.634)):
            freq = frequency(lab, [0.0, math.log(3)], 0.5, "softmax", temperature, 1)
            need(abs(freq - 0.9) > 0.03 or temperature == 1,
                 "temperature multiplies the losses: use loss / T")
            need(abs(freq - want) < 0.035,
                 f"softmax at T = {temperature:g}: batch 1 (loss ln 3) chosen {freq:.1%} of 2000 "
                 f"seeds; p = softmax(loss / T) gives {want:.1%}")

    def temperature_limits():
        # T -> 0 is topk; T -> ∞ is uniform (every batch in with probability rate).
        got = picks(lab, losses, 0.3, "softmax", temperature=0.01)
        need(got == [2, 6, 9], f"softmax at T = 0.01 must pick the hardest batches [2, 6, 9]; "
                               f"got {got}")
        freq = frequency(lab, losses, 0.5, "softmax", 1e6, 5, n=1000)     # 5: the lowest loss
        need(0.42 < freq < 0.58, f"softmax at T = 1e6 is uniform: batch 5 should be chosen ~50% "
                                 f"of the time, got {freq:.0%}")

    def uniform():
        # The control arm must ignore the losses: the lowest-loss batch is in half of the draws.
        # Over 1000 seeds the standard error is 0.016: 0.42..0.58 is 5 of them.
        freq = frequency(lab, losses, 0.5, "uniform", 1.0, 5, n=1000)
        need(0.42 < freq < 0.58, f"uniform: every batch is chosen with probability rate = 50%; "
                                 f"batch 5 (the lowest loss) was chosen {freq:.0%} of 1000 seeds")
        again = [picks(lab, losses, 0.5, "uniform", seed=3) for _ in range(2)]
        need(again[0] == again[1],
             "the same seed must give the same selection (torch.Generator().manual_seed(seed))")
        try:
            lab.select_batches(losses, 0.5, "hardest")
        except ValueError:
            return
        raise Fail("an unknown mode ('hardest') must raise ValueError")

    return [("sizes n0 = max(1, round(rate·N)), no repeats, sorted", sizes_and_repeats),
            ("topk", topk), ("softmax: P = softmax(loss / T), worked by hand", softmax_probability),
            ("softmax at T -> 0 and T -> ∞", temperature_limits),
            ("uniform, seeds, bad mode", uniform)]


# ==== Lab 8: the learning rate (labs/lr_schedule.py).
def checks_lr_schedule(lab):
    """The schedule at steps worked by hand (warmup, peak, cosine midpoint, floor, beyond),
    edge cases (no warmup, max_iters <= warmup), and the batch rule at r = 0.5, 1, 0."""
    def schedule_by_hand():
        # warmup 10, max_iters 110, peak 1, floor 0.1: step 0 -> 1/10, step 4 -> 5/10, steps 9
        # and 10 -> 1; step 110 and after: the floor 0.1; step 60, halfway through the cosine:
        # 0.1 + 0.9 · (1 + cos(π/2)) / 2 = 0.55. Checked in this order, so that the first step
        # that fails names the mistake.
        got = {s: float(lab.lr_at(s, 110, 1.0, 10, 0.1)) for s in (0, 4, 9, 10, 110, 200, 60)}
        want = {0: 0.1, 4: 0.5, 9: 1.0, 10: 1.0, 110: 0.1, 200: 0.1, 60: 0.55}
        warmup = "warmup: lr = peak · (step + 1) / warmup_iters"
        hints = {0: "no warmup: step 0 must start at peak / warmup_iters" if got[0] > 0.9 else
                 warmup + " (step 0 already learns)",
                 4: warmup, 9: "the warmup reaches the peak at its last step",
                 10: "the cosine starts at the peak right after the warmup",
                 110: "the cosine ends at the floor min_lr_ratio · peak"
                      + (", not 0" if got[110] < 1e-9 else ""),
                 200: "past max_iters the lr stays at the floor (cap the progress at 1)",
                 60: "the cosine runs over max_iters - warmup_iters steps: step 60 is halfway"}
        for step, lr in got.items():
            need(abs(lr - want[step]) < 1e-6,
                 f"step {step}: lr {lr:.4g}, expected {want[step]:g}; {hints[step]}")

    def edge_cases():
        # No warmup and a floor of 0: a plain half cosine from 2 to 0, 1 at the midpoint. A run
        # shorter than its warmup (max_iters <= warmup_iters) must not divide by zero.
        got = [float(lab.lr_at(s, 100, 2.0, 0, 0.0)) for s in (0, 50, 100)]
        need(near(got, [2.0, 1.0, 0.0], 1e-6),
             f"no warmup (0 steps), floor 0: steps 0, 50, 100 gave {got}; expected [2, 1, 0]")
        got = float(lab.lr_at(7, 5, 1.0, 5, 0.1))
        need(abs(got - 0.1) < 1e-6,
             f"max_iters <= warmup_iters: after the warmup comes the floor; got {got:.4g}")

    def batch_rule():
        # lr0 = 1e-3 tuned at 100k tokens, a batch 4x larger: r = 0.5 -> 2e-3 (sqrt 4 = 2),
        # r = 1 -> 4e-3, r = 0 -> 1e-3.
        got = [float(lab.batch_lr(1e-3, 400_000, 100_000, r)) for r in (0.5, 1.0, 0.0)]
        diagnose(got, [2e-3, 4e-3, 1e-3], [
            ([4e-3] * 3, "the power r is ignored: lr = lr0 · (batch / base)^r"),
            ([5e-4, 2.5e-4, 1e-3], "the ratio is upside down: (batch / base)^r")],
            f"a batch 4x the base at r = 0.5, 1, 0 gave {show(got)}; "
            f"expected [0.002, 0.004, 0.001]", 1e-9)
        got = float(lab.batch_lr(1e-3, 400_000, 0, 0.5))
        need(abs(got - 1e-3) < 1e-12,
             f"base_batch_tokens = 0 means no scaling: expected 0.001, got {got:g}")

    return [("warmup + cosine, worked by hand", schedule_by_hand),
            ("no warmup; max_iters <= warmup", edge_cases), ("lr ∝ (batch / base)^r", batch_rule)]


# ==== Lab 9 (GPU): the Triton RMSNorm forward kernel (labs/triton_rmsnorm.py).
def gpu_lab_skip_reason():
    """Why the Triton lab cannot run here, or None: it needs triton and a CUDA GPU (or
    Triton's CPU interpreter, switched on by the user)."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (Linux with an NVIDIA GPU: pip install triton)"
    if not torch.cuda.is_available() and not INTERPRET:
        return ("no CUDA GPU here (torch.cuda.is_available() is False); to check your logic in "
                "Triton's slow CPU interpreter: TRITON_INTERPRET=1 python labs/grade.py "
                "triton_rmsnorm")
    return None


def checks_triton_rmsnorm(lab):
    """The kernel against the float64 definition at C = 64, 96 (masked lanes) and 1792 in
    bfloat16 (fp32 math inside, the store in x's dtype)."""
    device = "cuda" if torch.cuda.is_available() and not INTERPRET else "cpu"

    def rows(C, dtype, tol):
        # Against the definition in float64; the usual slip, dividing by the padded BLOCK_C
        # (the next power of two) instead of C, is named. C = 64 cannot show it: no padding.
        torch.manual_seed(C)
        x, w = (torch.randn(*shape, device=device).to(dtype) for shape in ((3, C), (C,)))
        y = lab.rms_norm_forward(x, w, 1e-5)
        block = 1 << (C - 1).bit_length()
        x64, w64 = x.to(F64), w.to(F64)
        by_block = x64 * torch.rsqrt(x64.pow(2).sum(-1, keepdim=True) / block + 1e-5) * w64
        need(y.dtype == dtype, f"C = {C}: y is {y.dtype}; store it in x's dtype {dtype}")
        diagnose(y, reference_rmsnorm(x64, w64, 1e-5), [
            (by_block, f"C = {C}: you divided the sum of squares by BLOCK_C = {block}; "
                       f"divide by C")],
            f"C = {C}, {dtype}: y differs from x · rstd · w (lanes past C masked? fp32?)", tol)

    return [("C = 64, float32", lambda: rows(64, torch.float32, 1e-5)),
            ("C = 96 (not a power of two: masked lanes)", lambda: rows(96, torch.float32, 1e-5)),
            ("C = 1792 (the 1B hidden size), bfloat16", lambda: rows(1792, torch.bfloat16, 2e-2))]


# ==== The project's own implementations behind the labs' signatures (--solution).
def solution_rmsnorm():
    """kernels/rmsnorm.py's rms_norm (Triton forward, hand-written backward): on a CUDA GPU,
    or on CPU in Triton's interpreter, switched on before kernels.rmsnorm is imported."""
    cuda = torch.cuda.is_available() and not INTERPRET
    if not cuda:
        os.environ["TRITON_INTERPRET"] = "1"
    from kernels.rmsnorm import rms_norm
    dev = "cuda" if cuda else "cpu"
    return SimpleNamespace(
        rms_norm_forward=rms_norm,
        rms_norm=lambda x, w, eps: rms_norm(x.to(dev), w.to(dev), eps).to(x.device))


def solution_rope():
    import model
    return SimpleNamespace(rope_tables=model.rope_tables, apply_rope=model.apply_rope)


def solution_attention():
    """model.Attention itself, its projections replaced by pass-throughs and RoPE switched off
    (angle 0): its forward then makes the project's attention call (SDPA, causal, GQA) on the
    given q, k, v."""
    import model

    class Given(torch.nn.Module):       # a "projection" returning a prepared (B, T, heads·D)
        def __init__(self, t):
            super().__init__()
            self.t = t

        def forward(self, x):
            return self.t

    def causal_attention(q, k, v):
        B, H, T, D = q.shape
        config = model.ModelConfig(vocab_size=64, n_embd=H * D, n_head=H, n_kv_head=k.size(1),
                                   use_kernels=False)
        attn = model.Attention(config).to(q.dtype)
        flat = lambda t: Given(t.transpose(1, 2).reshape(B, T, -1))    # noqa: E731  (B, T, heads·D)
        attn.q_proj, attn.k_proj, attn.v_proj = flat(q), flat(k), flat(v)
        attn.o_proj = torch.nn.Identity()
        no_turn = torch.ones(T, D // 2, dtype=q.dtype), torch.zeros(T, D // 2, dtype=q.dtype)
        return attn(q.new_zeros(B, T, H * D), *no_turn).view(B, T, H, D).transpose(1, 2)
    return SimpleNamespace(causal_attention=causal_attention)


def solution_bits_per_byte():
    """tokenizer_compress.bits_per_byte; the byte count and the re-cut loss are one-liners."""
    from tokenizer_compress import bits_per_byte

    def loss_per_token_under(loss, n_tokens, other_n_tokens):
        # the same total bits (bits per byte × bytes, here 1 "byte") over the other tokens, in nats
        return bits_per_byte(loss, n_tokens, 1) * math.log(2) / other_n_tokens
    return SimpleNamespace(bits_per_byte=bits_per_byte, loss_per_token_under=loss_per_token_under,
                           utf8_bytes=lambda text: len(text.encode("utf-8")))


def solution_compact_vocab():
    """tokenizer_compress.plain_top_k (bytes first, then by count), renumbered by its
    build_encoding (old id order, <|endoftext|> last) over cl100k_base. The remap: an old
    token's rank in that encoding."""
    import tokenizer_compress as tc
    base = tc.load_tokenizer("cl100k_base")

    def plain_top_k(counts, byte_ids, special_ids, K):
        kept = tc.plain_top_k(np.asarray(counts), K, list(byte_ids), list(special_ids))
        return tc.build_encoding(base, kept).new_to_old

    def remap(old_ids, new_to_old):
        enc = tc.build_encoding(base, [i for i in new_to_old if i != EOT])
        ranks = enc._mergeable_ranks
        return [enc.eot_token if i == EOT else ranks[base.decode_single_token_bytes(i)]
                for i in old_ids]
    return SimpleNamespace(plain_top_k=plain_top_k, remap=remap)


def solution_importance():
    """inherit.py's metrics on a one-layer Transformer holding the lab's block (embedding, head
    and norms zero: they add nothing to the channel scores). Taylor: the loss of calibration
    batch b is Σ_p (p · G_p).sum(), whose gradient is exactly the lab's G_p, so the project's
    own code turns the lab's gradients into w · dL/dw. inherit.py's "groups" (kv groups, with
    their k and v rows) are the lab's heads: under multi-head attention a group is one head."""
    import inherit
    import model
    names = {"q": "attn.q_proj", "k": "attn.k_proj", "v": "attn.v_proj", "o": "attn.o_proj",
             "gate": "ffn.gate_proj", "up": "ffn.up_proj", "down": "ffn.down_proj"}

    def layer0(scores):                 # inherit.py scores (layers, units): ours is layer 0
        return {"heads": scores["groups"][0], "neurons": scores["neurons"][0],
                "channels": scores["channels"]}

    def build(block, n_head):
        C, n_neurons = block["q"].size(1), block["gate"].size(0)
        config = model.ModelConfig(vocab_size=8, n_layer=1, n_embd=C, n_head=n_head,
                                   ffn_ratio=n_neurons / C, ffn_multiple=1)
        net = model.Transformer(config).to(F64)
        state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
        state.update({f"layers.0.{names[k]}.weight": v for k, v in block.items()})
        net.load_state_dict(state)
        return net

    def unit_sums(per_weight, n_head):
        net = build(per_weight, n_head)
        return layer0(inherit.unit_sums(dict(net.state_dict()), net.config))

    def l2_scores(block, n_head):
        return layer0(inherit.WIDTH_METRICS["l2"](build(block, n_head), None, None, None))

    def taylor_scores(block, grads, n_head):
        net = build(block, n_head)
        params = dict(net.named_parameters())
        linear = [{f"layers.0.{names[k]}.weight": g[k] for k in g} for g in grads]
        net.forward = lambda b, y: (None, sum((p * linear[int(b)].get(k, 0)).sum()
                                              for k, p in params.items()))
        calib = SimpleNamespace(batches=lambda n, *stream_desc: ((torch.tensor(b), None)
                                                                 for b in range(n)))
        args = SimpleNamespace(calib_batches=len(grads))
        return layer0(inherit.WIDTH_METRICS["taylor"](net, calib, None, args))
    return SimpleNamespace(unit_sums=unit_sums, l2_scores=l2_scores, taylor_scores=taylor_scores)


def solution_refine():
    import train
    return SimpleNamespace(select_batches=train.select_batches)


def solution_lr_schedule():
    """train.lr_at and train.batch_lr read their settings from the training config: a
    stand-in holds them."""
    import train

    def lr_at(step, max_iters, peak, warmup_iters, min_lr_ratio):
        cfg = SimpleNamespace(warmup_iters=warmup_iters, min_lr_ratio=min_lr_ratio)
        return train.lr_at(step, max_iters, peak, cfg)

    def batch_lr(lr0, batch_tokens, base_batch_tokens, r):
        cfg = SimpleNamespace(lr=lr0, base_batch_tokens=base_batch_tokens, lr_scaling_r=r)
        return train.batch_lr(cfg, batch_tokens)
    return SimpleNamespace(lr_at=lr_at, batch_lr=batch_lr)


SOLUTIONS = {"rmsnorm": solution_rmsnorm, "rope": solution_rope, "attention": solution_attention,
             "bits_per_byte": solution_bits_per_byte, "compact_vocab": solution_compact_vocab,
             "importance": solution_importance, "refine": solution_refine,
             "lr_schedule": solution_lr_schedule, "triton_rmsnorm": solution_rmsnorm}


# ==== Running the checks.
def student_module(name):
    """labs/<name>.py, loaded by its path (a fresh module each time: edits are seen)."""
    spec = importlib.util.spec_from_file_location(f"lab_{name}", os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def explain(error, name):
    """One line for an exception raised by the code under test: what, and where in the lab."""
    if isinstance(error, NotImplementedError):
        return f"not implemented yet: fill in labs/{name}.py" + (f" ({error})" if str(error)
                                                                 else "")
    path = os.path.join(HERE, f"{name}.py")
    tb = traceback.extract_tb(error.__traceback__)
    frames = [f for f in tb if os.path.abspath(f.filename) == path]
    where = f" at labs/{name}.py:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__} raised{where}: " + (str(error).splitlines() or [""])[0]


def grade(name, solution=False, module=None, out=print):
    """Run lab `name`'s checks on `module` (any object with the lab's functions), else on
    labs/<name>.py, or with solution=True on the project's code. Prints one line per check;
    returns True when every check passes (or the lab is skipped for want of a GPU)."""
    who = "the project's code" if solution else "the given module" if module else f"labs/{name}.py"
    out(f"== {name}: {LABS[name]} ({who})")
    if name == "triton_rmsnorm" and gpu_lab_skip_reason():
        out(f"  SKIP  {gpu_lab_skip_reason()}")
        return True
    try:
        lab = module or (SOLUTIONS[name]() if solution else student_module(name))
    except Exception as e:          # a syntax error in the lab, or a project function that moved
        out(f"  FAIL  cannot load it: {type(e).__name__}: " + (str(e).splitlines() or [""])[0])
        return False
    checks, passed = globals()[f"checks_{name}"](lab), 0
    for title, run in checks:
        try:
            run()
            out(f"  PASS  {title}")
            passed += 1
        except Fail as e:
            out(f"  FAIL  {title}: {e}")
        except Exception as e:      # the code under test crashed: what and where, in one line
            out(f"  FAIL  {title}: {explain(e, name)}")
    out(f"   {passed} of {len(checks)} checks pass" + (": done" if passed == len(checks) else ""))
    return passed == len(checks)


def main(argv=None):
    p = argparse.ArgumentParser(prog="grade.py", description="Grade a lab of labs/: PASS or FAIL "
                                "per check with its reason; exit code 0 only when all pass.")
    p.add_argument("name", nargs="?", help=f"the lab: {', '.join(LABS)}")
    p.add_argument("--all", action="store_true", help="grade every lab, in course order "
                   "(default: off)")
    p.add_argument("--solution", action="store_true", help="check the project's own code "
                   "instead of labs/NAME.py (default: off)")
    args = p.parse_args(argv)
    if args.all == bool(args.name):
        p.error("name one lab, or pass --all")
    if args.name and args.name not in LABS:
        p.error(f"unknown lab {args.name!r}; choose one of {', '.join(LABS)}")
    torch.set_num_threads(1)        # tiny tensors: a second thread only adds waiting
    names = list(LABS) if args.all else [args.name]
    skipped = [n for n in names if n == "triton_rmsnorm" and gpu_lab_skip_reason()]
    results = [grade(name, args.solution) for name in names]
    if args.all:
        print(f"{sum(results) - len(skipped)} of {len(names)} labs pass"
              + (f", {len(skipped)} skipped" if skipped else ""))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
