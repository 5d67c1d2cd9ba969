"""Multiple-round training (paper, Multiple-Round Training; ../shared/PAPER.md §5): batch selection rules, a 2-round run, resume inside round 2,
and the batch-size / learning-rate power law."""
import json
import os
import random

import numpy as np
import pytest
import torch

import train
from data import batches
from conftest import make_shards
from train import select_batches, batch_lr, TrainConfig

SMALL = ["--n_layer=1", "--n_embd=32", "--n_head=2", "--block_size=16", "--batch_size=2", "--warmup_iters=2",
         "--eval_iters=2", "--log_interval=2", "--sample_tokens=0", "--lr=1e-2"]


def test_topk_selects_exactly_the_hardest():
    losses = np.r_[np.full(30, 1.0), np.full(10, 5.0)] + np.random.default_rng(0).random(40) * 0.1
    chosen = select_batches(losses, 0.25, "topk")
    assert set(chosen) == set(np.argsort(losses)[-10:]) and len(chosen) == 10


def test_softmax_prefers_hard_batches_never_repeats_and_is_reproducible():
    losses = np.r_[np.zeros(50), np.full(50, 2.0)]
    picks = [select_batches(losses, 0.3, "softmax", seed=s) for s in range(200)]
    assert all(len(set(p)) == len(p) == 30 for p in picks)                      # without replacement
    hard = np.mean([np.mean(p >= 50) for p in picks])
    assert hard > 0.75                                                          # e^2 ≈ 7.4x more likely each draw
    assert np.array_equal(select_batches(losses, 0.3, "softmax", seed=7), select_batches(losses, 0.3, "softmax", seed=7))
    uniform = np.mean([np.mean(select_batches(losses, 0.3, "uniform", seed=s) >= 50) for s in range(200)])
    assert abs(uniform - 0.5) < 0.05


def test_softmax_first_draw_follows_p_and_gumbel_matches_multinomial():
    """With one draw the chance of batch i is exactly p_i = softmax(loss/T)_i; the Gumbel-top-k path (used
    past torch.multinomial's 2^24 categories) must draw from the same distribution, also for several draws."""
    losses = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    p = torch.softmax(torch.tensor(losses / 2.0), 0).numpy()
    trials = 4000
    for limit in (2 ** 24, 0):                                                   # 0 forces Gumbel-top-k
        counts = np.bincount([select_batches(losses, 0.2, "softmax", 2.0, seed=s, multinomial_limit=limit)[0]
                              for s in range(trials)], minlength=5)
        sigma = np.sqrt(trials * p * (1 - p))
        assert np.all(np.abs(counts - trials * p) < 4 * sigma), (limit, counts, trials * p)
    # several draws without replacement: inclusion frequencies of the two paths agree
    inc = [np.zeros(5), np.zeros(5)]
    for s in range(trials):
        inc[0][select_batches(losses, 0.6, "softmax", 2.0, seed=s)] += 1
        inc[1][select_batches(losses, 0.6, "softmax", 2.0, seed=s, multinomial_limit=0)] += 1
    assert np.all(np.abs(inc[0] - inc[1]) < 4 * np.sqrt(trials * 0.25 * 2))


@pytest.mark.parametrize("args, msg", [((1.5, "softmax"), "must be in"), ((0.0, "topk"), "must be in"),
                                       ((0.5, "hardest"), "choose softmax, topk or uniform")])
def test_selection_errors(args, msg):
    with pytest.raises(ValueError, match=msg):
        select_batches([1.0, 2.0], *args)


def test_lr_power_law_is_exact():
    cfg = TrainConfig(lr=1e-3, lr_scaling_r=0.5, base_batch_tokens=1000)
    assert batch_lr(cfg, 4000) == pytest.approx(2e-3, rel=1e-15)                # (4000/1000)^0.5 = 2
    assert batch_lr(TrainConfig(lr=1e-3, lr_scaling_r=1.0, base_batch_tokens=1000), 500) == pytest.approx(5e-4)
    assert batch_lr(TrainConfig(lr=1e-3, lr_scaling_r=0.0, base_batch_tokens=1000), 4000) == 1e-3   # r = 0: off
    assert batch_lr(TrainConfig(lr=1e-3), 123456) == 1e-3                       # base 0 = this batch: no change


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Easy documents (one sentence repeated) and hard ones (random letters and digits)."""
    rng = random.Random(0)
    docs = [f"{i}: " + "the cat sat on the mat. " * 20 if i % 2 else
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(200)) for i in range(16)]
    return make_shards(tmp_path_factory.mktemp("planted"), docs, K=400, val_every=8)


def run(data, out, *args):
    train.main([f"--data={data}", f"--out_dir={out}", *SMALL, *args])
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_two_rounds_select_hard_batches_and_resume_inside_round_2(planted, tmp_path):
    args = ["--rounds=2", "--max_iters=16", "--refine_iters=8", "--eval_interval=8", "--refine=topk", "--sampling_rate=0.5"]
    log = run(planted, tmp_path / "a", *args)
    out = tmp_path / "a"
    assert (out / "round1.pt").exists() and (out / "round2.pt").exists()
    assert {r["round"] for r in log if "loss" in r} == {1, 2} and max(r["step"] for r in log if r["round"] == 2) == 8
    losses = np.load(out / "round2_batch_losses.npy")                    # (N,): NaN where not scored
    scored, chosen = np.flatnonzero(~np.isnan(losses)), np.load(out / "round2_selection.npy")
    assert len(chosen) == round(0.5 * len(scored)) and set(chosen) == set(scored[np.argsort(losses[scored])[-len(chosen):]])
    summary = json.load(open(out / "round2_selection.json"))
    assert summary["selected"]["min"] >= summary["dropped"]["max"]
    # The hard (random) text is what round 1 fits worst: the chosen batches are mostly made of it.
    meta = json.load(open(os.path.join(planted, "meta.json")))
    data = batches.Batches(os.path.join(planted, "train.bin"), meta["dtype"], 16, 2, 1337)
    easy_ids = set(np.unique(data.rows(int(np.argmin(losses)))[0].numpy()))
    def hard_share(ids):
        return np.mean([np.mean([t not in easy_ids for t in data.rows(int(i))[0].flatten().tolist()]) for i in ids])
    assert hard_share(chosen) > hard_share(np.setdiff1d(scored, chosen)) + 0.3

    # interrupted after 3 steps of round 2 (16 + 3 = 19 steps in all), then resumed: identical weights
    run(planted, tmp_path / "b", *args, "--halt_at=19")
    other = json.load(open(tmp_path / "b" / "round2_selection.json"))
    assert other.pop("owner")["run_id"] != summary.pop("owner")["run_id"] and other == summary   # another run
    resumed = run(planted, tmp_path / "b", *args, "--init_from=resume")
    a = torch.load(out / "round2.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "round2.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r for r in resumed if r.get("round") == 2 and "loss" in r][-1]["loss"] == \
           [r for r in log if r.get("round") == 2 and "loss" in r][-1]["loss"]


def test_rounds_must_be_positive(planted, tmp_path):
    with pytest.raises(ValueError, match="--rounds=0 must be at least 1"):
        run(planted, tmp_path, "--rounds=0")
    with pytest.raises(ValueError, match="--sampling_rate=1.5 must be in"):
        run(planted, tmp_path, "--sampling_rate=1.5")


def spy_batches(monkeypatch):
    """Record which batch ids train.py reads at each (round, step)."""
    seen, order = [], train.Batches.order

    def recording_order(self, ids, round_number, step):
        b = order(self, ids, round_number, step)
        seen.append((round_number, step, b))
        return b
    monkeypatch.setattr(train.Batches, "order", recording_order)
    return seen


@pytest.mark.parametrize("mode", ["softmax", "uniform", "topk"])
def test_round_2_trains_on_the_selected_batches_only_epoch_after_epoch(planted, tmp_path, monkeypatch, mode):
    calls, select = [], train.select_batches
    monkeypatch.setattr(train, "select_batches", lambda *a, **k: calls.append((a, k)) or select(*a, **k))
    seen = spy_batches(monkeypatch)
    meta = json.load(open(os.path.join(planted, "meta.json")))
    N = batches.Batches(os.path.join(planted, "train.bin"), meta["dtype"], 16, 8, 1337).n
    n0 = round(0.5 * N)
    run(planted, tmp_path, "--batch_size=8", "--rounds=2", f"--max_iters={N}", f"--refine_iters={2 * n0 + 1}",
        f"--eval_interval={N}", f"--refine={mode}", "--sampling_rate=0.5", "--refine_temperature=0.5")
    assert [(a[1], a[2], a[3]) for a, _ in calls if len(a) > 3] == [(0.5, mode, 0.5)]   # the options reach it
    chosen = np.load(tmp_path / "round2_selection.npy")
    assert len(chosen) == n0 == len(set(chosen))
    r1 = [b for r, _, b in seen if r == 1]
    r2 = [b for r, _, b in seen if r == 2]
    assert sorted(r1) == list(range(N))                                  # round 1: one pass over every batch
    assert len(r2) == 2 * n0 + 1 and set(r2) <= set(chosen.tolist())     # round 2: only the selection...
    assert sorted(r2[:n0]) == sorted(r2[n0:2 * n0]) == sorted(chosen)    # ...each once per epoch
    assert r2[:n0] != r2[n0:2 * n0]                                      # reshuffled every epoch
    summary = json.load(open(tmp_path / "round2_selection.json"))
    assert summary["refine"] == mode and summary["selected"]["n"] == n0


def test_round_2_draws_from_the_batches_round_1_trained_on(planted, tmp_path, monkeypatch):
    """Round 1 stopped short of a pass (--max_iters < N): only its batches are scored (the paper's N0;
    the others were never learned, so not forgotten) and round 2 trains on half of them."""
    seen = spy_batches(monkeypatch)
    meta = json.load(open(os.path.join(planted, "meta.json")))
    N = batches.Batches(os.path.join(planted, "train.bin"), meta["dtype"], 16, 2, 1337).n
    steps = N // 3 + 1                                                     # not a divisor of N
    run(planted, tmp_path, "--rounds=2", f"--max_iters={steps}", "--eval_interval=100", "--sampling_rate=0.5")
    r1, r2 = ({b for r, _, b in seen if r == k} for k in (1, 2))
    losses, chosen = np.load(tmp_path / "round2_batch_losses.npy"), np.load(tmp_path / "round2_selection.npy")
    assert len(r1) == steps < N and set(np.flatnonzero(~np.isnan(losses))) == r1   # scored: round 1's only
    assert r2 == set(chosen.tolist()) and r2 < r1 and len(chosen) == round(0.5 * steps)   # one pass over half
    assert json.load(open(tmp_path / "round2_selection.json"))["all"]["n"] == steps


def test_resume_across_epoch_boundaries_in_round_1_and_round_2(planted, tmp_path):
    meta = json.load(open(os.path.join(planted, "meta.json")))
    N = batches.Batches(os.path.join(planted, "train.bin"), meta["dtype"], 16, 8, 1337).n
    n0 = round(0.5 * N)
    args = ["--batch_size=8", "--rounds=2", f"--max_iters={N + 3}", f"--refine_iters={n0 + 3}", "--eval_interval=100",
            "--refine=softmax", "--log_interval=1"]
    full = run(planted, tmp_path / "a", *args)
    # halted just before round 1's first epoch ends, then just before round 2's: each resume crosses a boundary
    run(planted, tmp_path / "b", *args, f"--halt_at={N - 1}")
    run(planted, tmp_path / "b", *args, f"--halt_at={N + 3 + n0 - 1}", "--init_from=resume")
    resumed = run(planted, tmp_path / "b", *args, "--init_from=resume")
    losses = lambda log: {(r["round"], r["step"]): r["loss"] for r in log if "loss" in r}
    assert losses(resumed) == losses(full) and len(losses(full)) == N + 3 + n0 + 3
    a = torch.load(tmp_path / "a" / "round2.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "round2.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_contiguous_batches_are_stretches_of_the_split_in_order(tmp_path):
    """--contiguous_batches (study 4: one domain a batch): batch i is the i-th stretch of the split, cut into
    parts as the shuffled default is; the default mixes sequences from all over the split."""
    path = str(tmp_path / "train.bin")
    np.arange(1000, dtype=np.uint16).tofile(path)          # token k is k: positions are readable
    T, B = 10, 4
    data = batches.Batches(path, "uint16", T, B, 1337, contiguous=True)
    assert data.n == 24                                     # (1000 - 1) // 10 = 99 sequences, 24 batches of 4
    for i in (0, 5, data.n - 1):
        x, y = data.rows(i)                                 # (B, T)
        assert torch.equal(x.flatten(), torch.arange(i * B * T, (i + 1) * B * T)) and torch.equal(y, x + 1)
        assert torch.equal(torch.cat([data.rows(i, part, 2)[0] for part in (0, 1)]), x)
    mixed = batches.Batches(path, "uint16", T, B, 1337)
    starts = [sorted(mixed.rows(i)[0][:, 0].tolist()) for i in range(mixed.n)]
    assert sum(s == list(range(s[0], s[0] + B * T, T)) for s in starts) < 2      # not stretches


def test_train_reads_contiguous_batches_when_asked(planted, tmp_path, monkeypatch):
    made, Batches = [], train.Batches

    def spy(path, **k):                      # train.bin's batches, then val.bin's: then stop, nothing trained
        made.append((os.path.basename(path), k.get("contiguous", False)))
        if path.endswith("val.bin"):
            raise InterruptedError
        return Batches(path, **k)
    monkeypatch.setattr(train, "Batches", spy)
    for flag in ("true", "false"):
        with pytest.raises(InterruptedError):
            run(planted, tmp_path / flag, f"--contiguous_batches={flag}")
    assert made == [("train.bin", True), ("val.bin", False), ("train.bin", False), ("val.bin", False)]


@pytest.mark.slow                      # five runs
def test_a_copy_of_a_run_that_chooses_otherwise_reuses_its_batch_losses(planted, tmp_path):
    """Round 2's batch losses depend on the run's model and batches only (reproduce.py's round-2 arms are
    copies of one round 1): a copy with other --refine options scores nothing again, and selects anew."""
    import shutil
    args = ["--rounds=2", "--max_iters=8", "--refine_iters=2", "--eval_interval=8", "--sampling_rate=0.5"]
    run(planted, tmp_path / "a", *args, "--halt_at=8")                  # round 1 only
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    run(planted, tmp_path / "a", *args, "--refine=topk", "--init_from=resume")      # scores, picks the hardest
    losses = np.load(tmp_path / "a" / "round2_batch_losses.npy")
    planted_losses = np.nanmax(losses) + np.nanmin(losses) - losses     # the ranking turned upside down
    scored = np.flatnonzero(~np.isnan(losses))                          # round 1's 8 batches
    np.save(tmp_path / "b" / "round2_batch_losses.npy", planted_losses)
    shutil.copy(tmp_path / "a" / "round2_selection.json", tmp_path / "b")
    run(planted, tmp_path / "b", *args, "--refine=topk", "--refine_temperature=0.5", "--init_from=resume")
    chosen = np.load(tmp_path / "b" / "round2_selection.npy")
    assert set(chosen) == set(scored[np.argsort(planted_losses[scored])[-len(chosen):]])   # the reused losses
    assert json.load(open(tmp_path / "b" / "round2_selection.json"))["temperature"] == 0.5
    # another run's losses (another run_id) are scored again
    run(planted, tmp_path / "c", *args, "--halt_at=8")
    shutil.copy(tmp_path / "b" / "round2_batch_losses.npy", tmp_path / "c")
    shutil.copy(tmp_path / "b" / "round2_selection.json", tmp_path / "c")
    run(planted, tmp_path / "c", *args, "--refine=topk", "--init_from=resume")
    assert not np.array_equal(np.load(tmp_path / "c" / "round2_batch_losses.npy"), planted_losses, equal_nan=True)
