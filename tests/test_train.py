"""train.py: learning, exact resume, DDP (gloo, 2 processes), config parsing and the clear errors."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import train
from conftest import make_shards

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A small model that runs in seconds, on data encoded with a compact tokenizer (the corpus uses 285 ids).
SMALL = ["--n_layer=2", "--n_embd=32", "--n_head=2", "--block_size=32", "--batch_size=4", "--warmup_iters=2",
         "--eval_iters=2", "--log_interval=2", "--sample_tokens=0", "--lr=3e-3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    lines = ["To be, or not to be, that is the question.", "All the world's a stage.",
             "Now is the winter of our discontent.", "What's in a name? A rose by any other name."]
    docs = ["\n".join(lines[(i + j) % 4] for j in range(40)) for i in range(12)]
    return make_shards(tmp_path_factory.mktemp("corpus"), docs, K=300)


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


def test_resumed_run_reproduces_the_uninterrupted_losses_exactly(data, tmp_path):
    full = run(data, tmp_path / "a", "--max_iters=12", "--eval_interval=4")
    run(data, tmp_path / "b", "--max_iters=12", "--eval_interval=4", "--halt_at=6")
    resumed = run(data, tmp_path / "b", "--max_iters=12", "--eval_interval=4", "--init_from=resume")
    assert train_losses(resumed) == train_losses(full)                  # bit-for-bit on CPU
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_gloo_two_processes_match_one(data, tmp_path):
    single = run(data, tmp_path / "one", "--max_iters=6", "--eval_interval=6")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
           f"--data={data}", f"--out_dir={tmp_path / 'two'}", *SMALL, "--max_iters=6", "--eval_interval=6"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(tmp_path / "two" / "log.jsonl") as f:
        two = [json.loads(line) for line in f]
    for key, loss in train_losses(single).items():      # same data stream, gradients averaged over ranks
        assert train_losses(two)[key] == pytest.approx(loss, rel=1e-4)
    # each rank reads its own half of every batch: a batch that does not split is refused
    r = subprocess.run(cmd + ["--batch_size=3"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0 and "not divisible by the 2 processes" in r.stderr


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    run(data, tmp_path, "--max_iters=4", "--eval_interval=4")
    before = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        run(data, tmp_path, "--max_iters=12", "--eval_interval=4", "--init_from=resume", "--lr=1e30")
    after = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert after["step"] == 4 and all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


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
    with pytest.raises(ValueError, match="trained with tokenizer 'tok' but .* made with 'shakespeare-16k'"):
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


def test_cli_errors_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "train.py", f"--data={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "prepare.py" in r.stderr


@pytest.mark.parametrize("opt, msg", [("--batch_size=0", "must be at least 1"), ("--log_interval=0", "must be at least 1"),
                                      ("--warmup_iters=-1", "must not be negative"), ("--lr=0", "must be positive"),
                                      ("--min_lr_ratio=2", r"must be in \[0, 1\]"), ("--refine=best", "choose softmax")])
def test_bad_option_values_are_refused(opt, msg):
    with pytest.raises(ValueError, match=msg):
        train.check_config(train.parse_config([opt])[0])
