"""Grading bites: for every lab the project's own solution passes, the untouched skeleton fails
with "not implemented yet" (no traceback), and plausible wrong answers fail with the reason that
names the mistake. The wrong answers are written here and given to the grader as the student's
module, in process (fast); one test runs the command line itself."""
import importlib.util
import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("grade", os.path.join(ROOT, "labs", "grade.py"))
grade = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(grade)
NO_GPU_LAB = grade.gpu_lab_skip_reason()   # None under TRITON_INTERPRET=1 (conftest sets it)


def run(name, **kw):
    """(every check passed, the grader's printed report)."""
    lines = []
    ok = grade.grade(name, out=lines.append, **kw)
    return ok, "\n".join(lines)


@pytest.mark.parametrize("name", list(grade.LABS))
def test_the_projects_solution_passes(name, one_thread):
    ok, report = run(name, solution=True)
    assert ok and "FAIL" not in report, report


@pytest.mark.parametrize("name", list(grade.LABS))
def test_the_untouched_skeleton_fails_without_a_traceback(name, one_thread):
    if name == "triton_rmsnorm" and NO_GPU_LAB:
        pytest.skip(NO_GPU_LAB)
    ok, report = run(name)
    assert not ok and "not implemented yet" in report and "Traceback" not in report, report


# ==== Wrong answers. Each helper writes the right answer, or it with one chosen mistake.
def rmsnorm_variant(eps_outside=False, dx_rule="right", dw_rule="right"):
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, eps):
            ms = x.pow(2).mean(-1, keepdim=True)
            rstd = 1 / (ms.sqrt() + eps) if eps_outside else torch.rsqrt(ms + eps)
            ctx.save_for_backward(x, w, rstd)
            return x * rstd * w

        @staticmethod
        def backward(ctx, dy):
            x, w, rstd = ctx.saved_tensors
            xhat, g = x * rstd, w * dy
            dx = {"right": rstd * (g - xhat * (g * xhat).mean(-1, keepdim=True)),
                  "no_mean_term": rstd * g}[dx_rule]
            dw = {"right": dy * xhat, "unnormalised": dy * x}[dw_rule]
            return dx, dw.reshape(-1, x.size(-1)).sum(0), None
    return SimpleNamespace(rms_norm=lambda x, w, eps=1e-5: Wrong.apply(x, w, eps))


def rope_tables(D, n, base=10000.0, start=0, exponent=2):
    freqs = base ** (-exponent * torch.arange(D // 2).float() / D)
    angles = torch.arange(start, start + n).float()[:, None] * freqs
    return angles.cos(), angles.sin()


def rope_rotate_half(x, cos, sin, sign=1):
    x1, x2 = x.chunk(2, -1)
    return torch.cat((x1 * cos - sign * x2 * sin, sign * x1 * sin + x2 * cos), -1)


def rope_interleaved(x, cos, sin):
    x1, x2 = x[..., 0::2], x[..., 1::2]          # neighbours (0,1), (2,3): the GPT-J layout
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1).flatten(-2)


def rope(tables=rope_tables, apply=rope_rotate_half):
    return SimpleNamespace(rope_tables=tables, apply_rope=apply)


def attention_variant(expand="repeat_interleave", causal=True, scaled=True):
    def causal_attention(q, k, v):
        g, T = q.size(1) // k.size(1), q.size(2)
        grow = (lambda t: t.repeat_interleave(g, 1)) if expand == "repeat_interleave" else \
            (lambda t: t.repeat(1, g, 1, 1))
        s = q @ grow(k).transpose(-2, -1) / (math.sqrt(q.size(-1)) if scaled else 1)
        if causal:
            s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        return torch.softmax(s, -1) @ grow(v)
    return SimpleNamespace(causal_attention=causal_attention)


def bpb_variant(**wrong):
    right = dict(bits_per_byte=lambda loss, n, n_bytes: loss * n / math.log(2) / n_bytes,
                 utf8_bytes=lambda s: len(s.encode()), loss_per_token_under=lambda loss, n, m: loss * n / m)
    return SimpleNamespace(**{**right, **wrong})


def top_k_variant(bytes_first=True, sort_new_ids=True, skip_specials=True, stable=True,
                  keep_zeros=False):
    def plain_top_k(counts, byte_ids, special_ids, K):
        counts, ids = np.asarray(counts), np.arange(len(counts))
        order = np.lexsort((ids if stable else -ids, -counts))   # by count, ties by id (or not)
        skip = (set(byte_ids) if bytes_first else set()) | (set(special_ids) if skip_specials else set())
        ranked = [int(t) for t in order if t not in skip and (keep_zeros or counts[t] > 0)]
        kept = (list(byte_ids) if bytes_first else []) + ranked[:K - len(byte_ids) * bytes_first]
        return (sorted(kept) if sort_new_ids else kept) + list(special_ids)

    def remap(ids, new_to_old):
        return [{old: new for new, old in enumerate(new_to_old)}[i] for i in ids]
    return SimpleNamespace(plain_top_k=plain_top_k, remap=remap)


def importance_variant(heads_with_kv=True, taylor="right"):
    def unit_sums(per, H):
        D = per["q"].size(0) // H
        heads = per["q"].view(H, D, -1).sum((1, 2)) + per["o"].view(-1, H, D).sum((0, 2))
        if heads_with_kv:
            heads = heads + (per["k"] + per["v"]).view(H, D, -1).sum((1, 2))
        neurons = per["gate"].sum(1) + per["up"].sum(1) + per["down"].sum(0)
        channels = sum(per[m].sum(0) for m in ("q", "k", "v", "gate", "up")) \
            + per["o"].sum(1) + per["down"].sum(1)
        return {"heads": heads, "neurons": neurons, "channels": channels}

    def taylor_scores(w, grads, H):
        mean = {k: sum(g[k] for g in grads) / len(grads) for k in w}
        if taylor == "element_wise":
            return unit_sums({k: (w[k] * mean[k]).abs() for k in w}, H)
        if taylor == "abs_per_batch":
            per_batch = [unit_sums({k: w[k] * g[k] for k in w}, H) for g in grads]
            return {u: sum(s[u].abs() for s in per_batch) / len(grads) for u in per_batch[0]}
        return {u: s.abs() for u, s in unit_sums({k: w[k] * mean[k] for k in w}, H).items()}
    return SimpleNamespace(unit_sums=unit_sums, taylor_scores=taylor_scores,
                           l2_scores=lambda w, H: unit_sums({k: v ** 2 for k, v in w.items()}, H))


def selection_variant(replacement=False, times_t=False, lowest=False, global_rng=False,
                      floor=False):
    def select_batches(losses, rate, mode, temperature=1.0, seed=0):
        losses = torch.as_tensor(losses, dtype=torch.float64)
        n0 = int(rate * len(losses)) if floor else max(1, round(rate * len(losses)))
        g = None if global_rng else torch.Generator().manual_seed(seed)
        if mode == "topk":
            chosen = torch.topk(losses, n0, largest=not lowest).indices
        elif mode == "uniform":
            chosen = torch.randperm(len(losses), generator=g)[:n0]
        elif mode == "softmax":
            p = torch.softmax(losses * temperature if times_t else losses / temperature, 0)
            chosen = torch.multinomial(p, n0, replacement=replacement, generator=g)
        else:
            raise ValueError(mode)
        return np.sort(chosen.numpy())
    return SimpleNamespace(select_batches=select_batches)


def lr_variant(warmup=True, floor=True, whole_span=False, capped=True, power=True):
    def lr_at(step, iters, peak, warm, ratio):
        ratio = ratio if floor else 0.0
        if warmup and step < warm:
            return peak * (step + 1) / warm
        progress = (step / iters) if whole_span else (step - warm) / max(1, iters - warm)
        progress = min(progress, 1.0) if capped else progress
        return peak * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def batch_lr(lr0, batch, base, r):
        return lr0 * (batch / base if base else 1) ** (r if power else 1)
    return SimpleNamespace(lr_at=lr_at, batch_lr=batch_lr)


WRONG = {   # lab -> [(the student's module with one mistake, a phrase its FAIL reason must hold)]
    "rmsnorm": [(rmsnorm_variant(dx_rule="no_mean_term"), "misses the term that comes through rstd"),
                (rmsnorm_variant(eps_outside=True), "eps goes INSIDE the square root"),
                (rmsnorm_variant(dw_rule="unnormalised"), "multiply dy by the NORMALISED x")],
    "rope": [(rope(apply=rope_interleaved), "interleaved GPT-J layout"),
             (rope(apply=lambda x, c, s: rope_rotate_half(x, c, s, sign=-1)), "rotated by -θ"),
             (rope(tables=lambda D, n, b=1e4: rope_tables(D, n, b, start=1)), "positions start at 0"),
             (rope(tables=lambda D, n, b=1e4: rope_tables(D, n, b, exponent=1)),
              "base^(-2i/D), not base^(-i/D)"),
             (rope(apply=lambda x, c, s: rope_rotate_half(x, c.roll(1, 0), s.roll(1, 0))),
              "position 0 rotated by the angle of position 5")],
    "attention": [(attention_variant(expand="repeat"), "repeat_interleave, not repeat"),
                  (attention_variant(causal=False), "sees future keys"),
                  (attention_variant(scaled=False), "scores are not scaled")],
    "bits_per_byte": [(bpb_variant(bits_per_byte=lambda loss, n, nb: loss / math.log(2)),
                       "bits per TOKEN"),
                      (bpb_variant(bits_per_byte=lambda loss, n, nb: loss * n / nb), "divide by ln 2"),
                      (bpb_variant(utf8_bytes=len), "you counted characters"),
                      (bpb_variant(loss_per_token_under=lambda loss, n, m: loss),
                       "the total surprise is fixed")],
    "compact_vocab": [(top_k_variant(bytes_first=False), "single bytes first"),
                      (top_k_variant(sort_new_ids=False), "not the frequency order"),
                      (top_k_variant(skip_specials=False), "<|endoftext|> must come once"),
                      (top_k_variant(stable=False), "ties go to the lower id"),
                      (top_k_variant(keep_zeros=True), "has count 0 and was kept")],
    "importance": [(importance_variant(taylor="element_wise"), "summed |w·g| element-wise"),
                   (importance_variant(taylor="abs_per_batch"), "abs taken per batch"),
                   (importance_variant(heads_with_kv=False), "ignores its k and v rows")],
    "refine": [(selection_variant(replacement=True), "was drawn twice"),
               (selection_variant(times_t=True), "temperature multiplies the losses"),
               (selection_variant(lowest=True), "the 3 highest losses"),
               (selection_variant(global_rng=True), "the same seed must give the same selection"),
               (selection_variant(floor=True), "expected n0 = max(1, round(rate·N)) = 1")],
    "lr_schedule": [(lr_variant(warmup=False), "no warmup"),
                    (lr_variant(floor=False), "ends at the floor"),
                    (lr_variant(whole_span=True), "step 10: lr"),
                    (lr_variant(capped=False), "past max_iters"),
                    (lr_variant(power=False), "the power r is ignored")],
}


@pytest.mark.parametrize("name, index", [(n, i) for n in WRONG for i in range(len(WRONG[n]))])
def test_a_plausible_wrong_answer_fails_with_its_reason(name, index, one_thread):
    module, reason = WRONG[name][index]
    ok, report = run(name, module=module)
    assert not ok and reason in report, report


def test_the_right_answers_written_here_pass(one_thread):
    """The wrong answers above differ from these by their one mistake: so each failure above is
    caused by that mistake, not by something else in the helper."""
    right = {"rmsnorm": rmsnorm_variant(), "rope": rope(), "attention": attention_variant(),
             "bits_per_byte": bpb_variant(), "compact_vocab": top_k_variant(),
             "importance": importance_variant(), "refine": selection_variant(),
             "lr_schedule": lr_variant()}
    assert set(right) == set(WRONG) == set(grade.LABS) - {"triton_rmsnorm"}
    for name, module in right.items():
        ok, report = run(name, module=module)
        assert ok, report


@pytest.mark.skipif(NO_GPU_LAB is not None, reason=f"the Triton lab cannot run here: {NO_GPU_LAB}")
def test_the_triton_lab_catches_a_mean_over_the_padded_block(one_thread):
    import triton
    import triton.language as tl

    @triton.jit
    def kernel(X, W, Y, C, eps, BLOCK_C: tl.constexpr):
        row, cols = tl.program_id(0), tl.arange(0, BLOCK_C)
        x = tl.load(X + row * C + cols, mask=cols < C, other=0.0).to(tl.float32)
        rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / BLOCK_C + eps)    # the mistake: not C
        w = tl.load(W + cols, mask=cols < C, other=0.0).to(tl.float32)
        tl.store(Y + row * C + cols, (x * rstd * w).to(Y.dtype.element_ty), mask=cols < C)

    def rms_norm_forward(x, w, eps=1e-5):
        y = torch.empty_like(x)
        kernel[(x.size(0),)](x, w, y, x.size(1), eps, BLOCK_C=triton.next_power_of_2(x.size(1)))
        return y
    ok, report = run("triton_rmsnorm", module=SimpleNamespace(rms_norm_forward=rms_norm_forward))
    assert not ok and "divided the sum of squares by BLOCK_C = 128; divide by C" in report, report
    assert report.count("PASS") == 1, report    # C = 64 is a power of two: no padding to show it


def test_bad_lab_name_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as e:
        grade.main(["nope"])
    assert e.value.code == 2 and "unknown lab 'nope'; choose one of rmsnorm" in capsys.readouterr().err


def test_the_gpu_lab_is_skipped_with_its_reason_on_a_cpu_machine(monkeypatch, capsys):
    """No CUDA and Triton's interpreter off: `--solution` of the GPU lab exits 0 and says why it
    was skipped (what `python labs/grade.py --all --solution` prints on a laptop)."""
    monkeypatch.setattr(grade, "INTERPRET", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert grade.main(["triton_rmsnorm", "--solution"]) == 0
    assert "SKIP  no CUDA GPU here" in capsys.readouterr().out


def test_the_command_line_exits_1_with_the_reason_for_a_skeleton(script):
    done = script("labs/grade.py", "lr_schedule")
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "FAIL  warmup + cosine" in output, output
    assert "not implemented yet" in output and "Traceback" not in output, output
