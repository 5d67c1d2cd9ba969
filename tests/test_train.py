"""train.py: learning, exact resume, DDP (gloo, 2 processes), config parsing and the clear errors."""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import train
from data import batches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A small model that runs in seconds, on data encoded with a compact tokenizer (the corpus uses 285 ids).
SMALL = ["--n_layer=2", "--n_embd=32", "--n_head=2", "--block_size=32", "--batch_size=4", "--warmup_iters=2",
         "--eval_iters=2", "--log_interval=2", "--sample_tokens=0", "--lr=3e-3"]


@pytest.fixture(scope="module")
def data(four_lines):
    return four_lines                                   # tests/conftest.py: built once a run


def run(data, out, *args):
    train.main([f"--data={data}", f"--out_dir={out}", *SMALL, *args])
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def train_losses(log):
    return {(r["round"], r["step"]): r["loss"] for r in log if "loss" in r}


def test_loss_falls_and_checkpoint_is_complete(data, tmp_path):
    log = run(data, tmp_path, "--max_iters=30", "--eval_interval=10")
    losses = [r["loss"] for r in log if "loss" in r]
    vals = [r["val_bpb"] for r in log if "val_bpb" in r]
    assert losses[-1] < losses[0] - 2 and vals[-1] < vals[0]
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert ckpt["step"] == 30 and ckpt["tokenizer"]["name"] == "tok" and ckpt["model_config"]["vocab_size"] == 320
    assert {"model", "optimizer", "model_config", "train_config", "rng"} <= set(ckpt)
    assert not any(p.endswith(".tmp") for p in os.listdir(tmp_path))   # written atomically


def test_resumed_run_reproduces_the_uninterrupted_run_exactly(data, tmp_path):
    # awkward boundaries: halted at step 7, neither a log step (4) nor an eval step (5). The checkpoint carries
    # the partial log window (steps 5-7), so the first log after the resume (step 8) averages steps 5-8.
    args = ["--max_iters=13", "--eval_interval=5"]
    full = train_losses(run(data, tmp_path / "a", *args, "--log_interval=1"))          # every step's loss
    run(data, tmp_path / "b", *args, "--log_interval=4", "--halt_at=7")
    resumed = train_losses(run(data, tmp_path / "b", *args, "--log_interval=4", "--init_from=resume"))
    assert sorted(resumed) == [(1, 4), (1, 8), (1, 12), (1, 13)]
    assert resumed[(1, 4)] == pytest.approx(sum(full[(1, s)] for s in range(1, 5)) / 4, rel=1e-6)
    assert resumed[(1, 8)] == pytest.approx(sum(full[(1, s)] for s in range(5, 9)) / 4, rel=1e-6)
    assert resumed[(1, 12)] == pytest.approx(sum(full[(1, s)] for s in range(9, 13)) / 4, rel=1e-6)
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)                     # bit-for-bit on CPU


def test_resume_may_switch_kernels_on_or_off(data, tmp_path):
    run(data, tmp_path, "--max_iters=2", "--eval_interval=2")
    log = run(data, tmp_path, "--max_iters=4", "--eval_interval=2", "--init_from=resume", "--use_kernels=false")
    assert max(r["step"] for r in log) == 4                   # how to run is not the model's identity


def test_grad_accum_splits_a_step_without_changing_it(data, tmp_path):
    """8 sequences x 1 micro-step and 4 x 2 are the same optimizer step: same data, same mean loss, same update."""
    a = run(data, tmp_path / "a", "--batch_size=8", "--max_iters=4", "--eval_interval=4")
    b = run(data, tmp_path / "b", "--batch_size=4", "--grad_accum=2", "--max_iters=4", "--eval_interval=4")
    for key, loss in train_losses(a).items():
        assert train_losses(b)[key] == pytest.approx(loss, rel=1e-5)
    wa = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)["model"]
    wb = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)


@pytest.mark.slow
def test_ddp_gloo_two_processes_match_one(data, tmp_path):
    """2 processes x 2 sequences x 2 micro-steps (no_sync on the first) = 1 process x 8 sequences."""
    single = run(data, tmp_path / "one", "--batch_size=8", "--max_iters=6", "--eval_interval=6")
    logs = tmp_path / "torchrun_logs"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = ["train.py", f"--data={data}", f"--out_dir={tmp_path / 'two'}", *SMALL, "--batch_size=4", "--grad_accum=2",
           "--max_iters=6", "--eval_interval=6", "--sample_tokens=8"]      # rank 0 samples while rank 1 waits
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(torchrun + [f"--log-dir={logs}", "--redirects=3"] + cmd, cwd=ROOT, capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, rank_logs(logs, r)
    with open(tmp_path / "two" / "log.jsonl") as f:
        two = [json.loads(line) for line in f]
    for key, loss in train_losses(single).items():      # same data stream, gradients averaged over ranks
        assert train_losses(two)[key] == pytest.approx(loss, rel=1e-4)



def test_a_batch_that_does_not_split_over_the_processes_is_refused_before_they_meet(data, tmp_path, monkeypatch):
    """Each rank reads its own part of every micro-batch; torchrun's WORLD_SIZE is read before the process
    group starts, so the error comes at once (no rank waits for the others)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="--batch_size=3 is not divisible by the 2 processes"):
        run(data, tmp_path, "--batch_size=3")


def rank_logs(log_dir, result):
    """Every rank's own stdout/stderr (torchrun --log-dir --redirects), not just the tail of torchrun's."""
    out = [f"torchrun exit {result.returncode}; stderr tail:\n{result.stderr[-1500:]}"]
    for root, _, files in os.walk(log_dir):
        for name in sorted(files):
            with open(os.path.join(root, name), errors="replace") as f:
                out.append(f"--- {os.path.relpath(os.path.join(root, name), log_dir)}\n{f.read()[-3000:]}")
    return "\n".join(out)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    run(data, tmp_path, "--max_iters=4", "--eval_interval=4")
    before = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    # eval (and checkpoint) every 3 steps, log every 10: the finiteness check must not wait for a log step
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        run(data, tmp_path, "--max_iters=12", "--eval_interval=3", "--log_interval=10", "--init_from=resume", "--lr=1e30")
    after = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert after["step"] == 4 and all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])
    assert all(torch.isfinite(v).all() for v in after["model"].values())


def test_init_from_a_checkpoint_path_starts_a_new_run_from_its_weights(data, tmp_path, capsys):
    src = run(data, tmp_path / "src", "--max_iters=30", "--eval_interval=30")
    first, last = src[0]["loss"], [r["loss"] for r in src if "loss" in r][-1]
    new = run(data, tmp_path / "new", f"--init_from={tmp_path / 'src' / 'ckpt.pt'}", "--max_iters=2",
              "--eval_interval=2", "--sample_tokens=12", "--sample_prompt=To be")
    assert [r["step"] for r in new if "loss" in r] == [2]                # a fresh run: steps start at 0
    assert new[0]["loss"] < (first + last) / 2                          # ...from the trained weights, not random ones
    ckpt = torch.load(tmp_path / "new" / "ckpt.pt", weights_only=False)
    assert ckpt["step"] == 2 and ckpt["train_config"]["init_from"].endswith("ckpt.pt")
    out = capsys.readouterr().out                                        # the final sample is printed
    sample = out.split("-" * 80)[1].strip()
    assert len(sample) > 0 and "final val loss" in out


def test_mismatches_are_refused(data, tmp_path):
    with pytest.raises(ValueError, match=r"uses 285 token ids but the model has vocab_size=100; compress"):
        run(data, tmp_path, "--vocab_size=100")
    with pytest.raises(ValueError, match="longer than the model's context"):
        run(data, tmp_path, "--seq_len=64", "--max_iters=1")      # SMALL sets the model's block_size=32
    run(data, tmp_path, "--max_iters=2", "--eval_interval=2")
    with pytest.raises(ValueError, match="another model config"):
        run(data, tmp_path, "--init_from=resume", "--n_layer=3")
    other = tmp_path / "other_tok"
    shutil.copytree(data, other)
    meta = json.load(open(other / "meta.json"))
    meta["tokenizer"].update(sha256="f" * 64, name="shakespeare-16k")
    json.dump(meta, open(other / "meta.json", "w"))
    with pytest.raises(ValueError, match="made with tokenizer 'shakespeare-16k', not 'tok', which .* was not"):
        run(other, tmp_path, f"--init_from={tmp_path / 'ckpt.pt'}")
    meta["tokenizer"].update(name="tok")                    # same name, other tokens: a rewritten file
    json.dump(meta, open(other / "meta.json", "w"))
    with pytest.raises(ValueError, match="another version of tokenizer 'tok' .*was its file rewritten"):
        run(other, tmp_path, f"--init_from={tmp_path / 'ckpt.pt'}")
    with pytest.raises(FileNotFoundError, match="run `python data/prepare.py` first"):
        run(tmp_path / "nowhere", tmp_path)


def test_config_parsing(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"lr": 0.5, "n_layer": 3}))
    cfg, model = train.parse_config([str(tmp_path / "c.json"), "--lr=0.25", "--compile=true", "--n_head=2"])
    assert cfg.lr == 0.25 and cfg.compile is True and model == {"n_layer": 3, "n_head": 2}
    for bad, msg in ((["--lr"], "needs a value"), (["--lrr=1"], "unknown option --lrr"),
                     (["--max_iters=ten"], "not a valid int"), (["missing.json"], "not found")):
        with pytest.raises(ValueError, match=msg):
            train.parse_config(bad)
    with pytest.raises(SystemExit):
        train.parse_config(["--help"])
    out = capsys.readouterr().out
    assert all(f"--{k}=" in out for k in ("lr", "rounds", "lr_scaling_r", "n_layer", "ffn_ratio", "halt_at"))


def test_cli_errors_are_one_line(tmp_path, script):
    r = script("train.py", f"--data={tmp_path}")
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "prepare.py" in r.stderr


@pytest.mark.parametrize("opt, msg", [("--batch_size=0", "must be at least 1"), ("--log_interval=0", "must be at least 1"),
                                      ("--warmup_iters=-1", "must not be negative"), ("--lr=0", "must be positive"),
                                      ("--min_lr_ratio=2", r"must be in \[0, 1\]"), ("--refine=best", "choose softmax"),
                                      ("--mfu=40", r"must be in \(0, 1\]"), ("--nproc=0", "must be at least 1"),
                                      ("--parallel=zero3", "choose ddp or fsdp")])
def test_bad_option_values_are_refused(opt, msg):
    with pytest.raises(ValueError, match=msg):
        train.check_config(train.parse_config([opt])[0])


def test_lr_schedule_warmup_then_cosine_to_the_floor():
    cfg = train.TrainConfig(warmup_iters=4, min_lr_ratio=0.1)
    lr = [train.lr_at(s, 14, 1.0, cfg) for s in range(15)]
    assert lr[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])             # linear warmup, reaching the peak
    assert lr[4] == pytest.approx(1.0)                                   # cosine starts at the peak...
    assert lr[9] == pytest.approx(0.55)                                  # ...halfway: (1 + 0.1) / 2
    assert lr[14] == pytest.approx(0.1)                                  # ...and ends on the floor
    assert all(a > b for a, b in zip(lr[4:14], lr[5:15]))                # strictly decreasing after warmup


def test_logged_lr_follows_the_schedule(data, tmp_path):
    log = run(data, tmp_path, "--max_iters=10", "--eval_interval=10", "--warmup_iters=4", "--min_lr_ratio=0.1")
    lrs = {r["step"]: r["lr"] for r in log if "lr" in r}                 # lr of the step just taken (0-based step-1)
    assert lrs[2] == pytest.approx(3e-3 * 2 / 4) and lrs[4] == pytest.approx(3e-3)
    assert lrs[10] == pytest.approx(3e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 6))))


def test_weight_decay_only_on_matrices():
    """With zero gradients AdamW's update is its decoupled decay alone: p <- p (1 - lr wd)."""
    from model import Transformer, model_config
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", n_layer=1, n_embd=16, n_head=2, vocab_size=64))
    cfg = train.TrainConfig(lr=0.1, weight_decay=0.5)
    opt = train.make_optimizer(model, cfg)
    before = {k: v.clone() for k, v in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for k, p in model.named_parameters():
        factor = 1 - 0.1 * 0.5 if p.dim() >= 2 else 1.0                  # norms' gains are not decayed
        assert torch.allclose(p, before[k] * factor), k
    assert {p.dim() for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]} == {1}


def test_gradients_are_clipped_before_the_optimizer_step(data, tmp_path, monkeypatch):
    norms, make = [], train.make_optimizer

    def spying_optimizer(*a, **k):
        opt = make(*a, **k)
        step = opt.step

        def recording_step(*sa, **sk):
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
            return step(*sa, **sk)
        opt.step = recording_step
        return opt
    monkeypatch.setattr(train, "make_optimizer", spying_optimizer)
    run(data, tmp_path / "a", "--max_iters=4", "--eval_interval=4", "--grad_clip=0.05")
    assert len(norms) == 4 and max(norms) <= 0.05 * (1 + 1e-5)
    norms.clear()
    run(data, tmp_path / "b", "--max_iters=4", "--eval_interval=4", "--grad_clip=0")
    assert max(norms) > 0.05                                             # without clipping they are larger


def test_permutation_is_a_bijection_for_awkward_sizes():
    for n in (1, 2, 3, 7, 1000, 4097):
        p = batches.permute(np.arange(n), n, batches.perm_key(5))
        assert sorted(p.tolist()) == list(range(n))
    p = batches.permute(np.arange(1000), 1000, batches.perm_key(5))
    assert not np.array_equal(p, np.arange(1000))                        # shuffled...
    assert not np.array_equal(p, batches.permute(np.arange(1000), 1000, batches.perm_key(6)))   # ...by the seed


def test_parts_of_a_batch_tile_it_exactly(data):
    meta = json.load(open(os.path.join(data, "meta.json")))
    b = batches.Batches(os.path.join(data, "train.bin"), meta["dtype"], 32, 8, 1337)
    whole_x, whole_y = b.rows(3)
    for parts in (2, 4, 8):
        xs = [b.rows(3, p, parts)[0] for p in range(parts)]
        assert torch.equal(torch.cat(xs), whole_x)
    assert torch.equal(whole_x[:, 1:], whole_y[:, :-1])                  # targets are inputs shifted by one
    tokens = np.fromfile(os.path.join(data, "train.bin"), dtype=meta["dtype"])
    row = whole_x[0].numpy()                                             # each row is a real slice of the stream
    starts = [s for s in range(0, len(tokens) - 32, 32) if np.array_equal(tokens[s:s + 32], row)]
    assert starts


@pytest.mark.slow
def test_fsdp_two_processes_match_one_and_resume_exactly_from_shards(data, tmp_path):
    """FSDP over 2 gloo processes (2 sequences x 2 micro-steps each) = 1 process x 8 sequences; and a sharded
    checkpoint (torch.distributed.checkpoint) resumed at an awkward step reproduces the run bit for bit."""
    args = ["--batch_size=8", "--max_iters=6", "--eval_interval=3", "--log_interval=1"]
    single = train_losses(run(data, tmp_path / "one", *args))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
                f"--data={data}", *SMALL, "--parallel=fsdp", "--batch_size=4", "--grad_accum=2", "--max_iters=6",
                "--eval_interval=3", "--log_interval=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for out, extra in (("full", []), ("split", ["--halt_at=4"]), ("split", ["--init_from=resume"])):
        r = subprocess.run(torchrun + [f"--out_dir={tmp_path / out}", *extra], cwd=ROOT, capture_output=True,
                           text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    logs = {o: train_losses([json.loads(line) for line in open(tmp_path / o / "log.jsonl")]) for o in ("full", "split")}
    assert logs["split"] == logs["full"] and len(logs["full"]) == 6
    for key, loss in single.items():
        assert logs["full"][key] == pytest.approx(loss, rel=1e-5)
    one = torch.load(tmp_path / "one" / "ckpt.pt", weights_only=False)["model"]
    full = torch.load(tmp_path / "full" / "ckpt.pt", weights_only=False)                 # consolidated: one file
    split = torch.load(tmp_path / "split" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.equal(full["model"][k], split[k]) for k in one)
    assert max((full["model"][k] - one[k]).abs().max().item() for k in one) < 1e-5
    assert full["sharded"] == "ckpt-r1-s6.dcp" and sorted(p for p in os.listdir(tmp_path / "split") if "dcp" in p) == \
        ["ckpt-r1-s6.dcp"]                                                               # older shards removed
    from model import load_model                                                          # eval / inherit / export read it
    assert load_model(str(tmp_path / "full" / "ckpt.pt"))[0].config.n_layer == 2


def test_fsdp_and_sharded_resume_refuse_impossible_layouts(data, tmp_path):
    with pytest.raises(ValueError, match="--parallel=fsdp shards the model over processes"):
        run(data, tmp_path, "--parallel=fsdp")
    with pytest.raises(ValueError, match="choose ddp or fsdp"):
        train.check_config(train.parse_config(["--parallel=zero3"])[0])


def saved_bytes(model, idx):
    """Bytes of the activations autograd saves for backward in a training forward: saved tensors, each
    storage counted once, the parameters (saved by the matmuls, but not activations) left out."""
    params, seen = {p.untyped_storage().data_ptr() for p in model.parameters()}, {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in params:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(idx, idx)
    return sum(seen.values())


@pytest.mark.parametrize("shape", [dict(n_layer=2, n_embd=64, n_head=4), dict(n_layer=3, n_embd=96, n_head=6, n_kv_head=2, ffn_ratio=3.5),
                                   dict(n_layer=4, n_embd=128, n_head=8, n_kv_head=1, ffn_ratio=4.0)])
def test_dry_run_activation_estimate_matches_a_measured_forward(shape):
    from model import Transformer, model_config
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=512, block_size=128, **shape)).train()
    idx = torch.randint(0, 512, (2, 128))
    measured = saved_bytes(model, idx)
    estimate = model.activation_bytes(idx.numel(), elem=4)                            # fp32 on CPU
    assert abs(estimate / measured - 1) < 0.2, (estimate, measured)
    model.act_ckpt = True                                    # only each block's input is kept...
    kept = saved_bytes(model, idx)
    assert kept < measured / 2 and kept <= model.activation_bytes(idx.numel(), True, elem=4)   # ...plus one block's peak


def test_act_ckpt_gives_the_same_loss_and_gradients():
    from model import Transformer, model_config
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", n_layer=2, n_embd=32, n_head=2, vocab_size=128, block_size=16)).train()
    idx = torch.randint(0, 128, (2, 16))
    grads = []
    for ckpt in (False, True):
        model.zero_grad()
        model.act_ckpt = ckpt
        loss = model(idx, idx)[1]
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads[0][1], grads[1][1]))


def test_dry_run_plans_the_1b_presets_without_allocating(capsys):
    total = train.main(["--preset=pangu-1b-pro", "--dry_run", "--data=nowhere", "--batch_size=64", "--seq_len=2048"])
    out = capsys.readouterr().out
    assert "952.2M parameters" in out and "vocab 48,064" in out and "micro-batch 8 x 2048 per GPU, 8 GPU(s)" in out
    P = 952.2e6
    assert total[0] > 16 * P and total[2] < total[0] and total[3] < total[2]      # FSDP and ckpt save memory
    assert abs(total[0] - total[2] - 14 * P * 7 / 8) < 0.05 * total[0]            # 16 B/param, 7/8 of it sharded away
    for bad in ("B200", "H100:lots"):
        with pytest.raises(ValueError, match=f"--gpu='{bad}': write NAME or NAME:GB"):
            train.main(["--preset=pangu-1b-pro", "--dry_run", f"--gpu={bad}"])
