"""train.py — train a nanopangu model. Reads top to bottom in numbered sections: 1 config, 2 the
paper's training rules (lr ∝ batch^r, warmup + cosine, the round-2 batch selection), 3 data,
4 model, 5 optimizer, 6 the loop. Processes, DDP/FSDP, sharded checkpoints, run folders and the
--dry_run plan live in distributed.py: skip it on a first reading.

    python train.py                                # tiny preset on data/shakespeare-compact
    python train.py my_config.json --lr=1e-3       # JSON config file, then --key=value overrides
    python train.py --preset=pangu-1b-pro --data=data/mycorpus-48k --batch_size=64 --grad_accum=4
    torchrun --standalone --nproc_per_node=8 train.py --preset=pangu-1b-pro ...   # DDP
    torchrun ... train.py --preset=pangu-1.5b-pro --parallel=fsdp --act_ckpt      # FSDP2 shards
    python train.py --preset=pangu-1b-pro --batch_size=64 --dry_run   # memory plan, no allocation
    python train.py --rounds=2 --sampling_rate=0.5 # multiple-round training with data refining
    python train.py --help                         # every option with its default

Model options (--n_layer=4, any ModelConfig field) override the --preset. Round 1 trains --max_iters
steps over all the data, each later round --refine_iters steps (0: one pass) over the batches the
round before chose among those round 1 trained on, from a fresh warmup. A fresh run moves a
previous run to out_dir/old-<time>/.
"""
import inspect
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, fields, asdict
from importlib.util import find_spec
from types import SimpleNamespace

import numpy as np
import torch
from tqdm import tqdm

import curves
import distributed
from data.batches import Batches, load_meta
from model import ModelConfig, PRESETS, Transformer, model_config, padded_vocab, load_checkpoint
from model import device_peak_flops, kernel_paths
from tokenizer_compress import bits_per_byte, decode_sample, load_tokenizer


# ---- 1. config: defaults < JSON config file < --key=value ---------------------------------------
# The comment on each option's line is its --help text (parse_config reads the source).
@dataclass
class TrainConfig:
    data: str = "data/shakespeare-compact"  # data/prepare.py's output: train/val.bin, meta.json
    preset: str = "tiny"           # tiny|small|pangu-1b-pro|pangu-1.5b-pro|baseline-1b (model.py)
    init_from: str = "scratch"     # scratch | resume (out_dir/ckpt.pt) | PATH of a checkpoint
    trust_checkpoint: bool = False # load an old pickled checkpoint once (runs code!)
    out_dir: str = "out"           # checkpoints, log.jsonl, round selections, curves.png
    # batch: one optimizer step = batch_size sequences x grad_accum micro-steps x seq_len tokens
    batch_size: int = 16           # sequences per micro-step, all ranks (each: B/world)
    grad_accum: int = 1            # micro-steps per optimizer step
    seq_len: int = 0               # training sequence length; 0 = the model's block_size
    contiguous_batches: bool = False  # batch i = the i-th stretch of train.bin; else a mix
    # optimizer: AdamW, linear warmup, cosine decay to a floor (../shared/PAPER.md §4 [code])
    lr: float = 3e-3               # peak learning rate, before batch-size scaling
    min_lr_ratio: float = 0.1      # cosine decay floor as a fraction of the peak lr
    warmup_iters: int = 15         # linear warmup steps (every round warms up again)
    max_iters: int = 150           # optimizer steps of round 1; ~10 min on 2 CPU cores
    weight_decay: float = 0.1      # AdamW weight decay, on matrices only (not norms)
    beta1: float = 0.9             # AdamW beta1 (PAPER.md §4 [code])
    beta2: float = 0.95            # AdamW beta2 (PAPER.md §4 [code])
    grad_clip: float = 1.0         # clip the global gradient norm; 0 = off
    lr_scaling_r: float = 0.5      # r in lr * (batch/base)^r (0.5 [reported]); 0 = off
    base_batch_tokens: int = 0     # tokens per step --lr was tuned at; 0 = this run's (no scaling)
    # multiple-round training with loss-based data refining
    rounds: int = 1                # training rounds; round r > 1 trains on batches round r-1 chose
    sampling_rate: float = 0.5     # R: fraction of round 1's N batches the next round draws (paper: 50%)
    refine: str = "softmax"        # softmax: p = softmax(loss/T) (paper) | topk: hardest | uniform
    refine_temperature: float = 1.0  # T in softmax(loss / T) (official release: 1)
    refine_iters: int = 0          # steps of each later round; 0 = one pass over its selection
    eval_interval: int = 50        # val loss / bits per byte, checkpoint every N steps (curves.png: <= 1/min)
    eval_iters: int = 20           # val batches per evaluation
    log_interval: int = 10         # log train loss every N steps (the loop's only host syncs)
    sample_tokens: int = 200       # tokens to sample at the end (0 = none)
    sample_prompt: str = ""        # prompt of the final sample; empty = start of a document
    curves: bool = True            # redraw out_dir/curves.png as it trains (needs matplotlib)
    halt_at: int = 0               # checkpoint and stop after this step (over all rounds); 0 = off
    device: str = "auto"           # auto (cuda if available, else cpu) | cpu | cuda | cuda:N | mps
    parallel: str = "ddp"          # torchrun: ddp (full copies) | fsdp (shards)
    act_ckpt: bool = False         # activation checkpointing: keep block inputs, recompute the rest
    dry_run: bool = False          # print the memory plan (bytes per GPU, FLOPs) and exit
    gpu: str = "H100:80"           # --dry_run: the GPU to plan for, NAME[:GB] (model.GPU_PEAK_BF16)
    mfu: float = 0.4               # --dry_run: model FLOPs utilisation that turns FLOPs into tok/s
    nproc: int = 8                 # --dry_run without torchrun: the number of GPUs to plan for
    compile: bool = False          # torch.compile the model
    seed: int = 1337               # seed for init, data order and sampling


def parse_config(argv):
    """(TrainConfig, model overrides) from: defaults < JSON config files < --key=value arguments."""
    options = {f.name: f for cls in (TrainConfig, ModelConfig) for f in fields(cls)}
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        for cls, defaults in ((TrainConfig, TrainConfig()), (ModelConfig, PRESETS["tiny"])):
            print(f"{cls.__name__} options" + " (defaults: the tiny preset)" * (cls is ModelConfig))
            helps = dict(re.findall(r"^ +(\w+):[^#\n]*# *(.*)$", inspect.getsource(cls), re.M))  # field: comment
            for f in fields(cls):
                print(f"  {f'--{f.name}={getattr(defaults, f.name)}':<34} {helps.get(f.name, '')}")
        sys.exit(0)
    values = {}
    for a in argv:
        key, eq, val = a[2:].partition("=")
        if not a.startswith("--"):                           # a JSON config file: {"key": value}
            try:
                loaded = json.load(open(a))
            except (OSError, ValueError) as e:               # no such file, or not JSON
                why = "not found (options are --key=value)" if isinstance(e, OSError) else f"is not valid JSON ({e})"
                raise ValueError(f"config file {a!r} {why}") from None
            if not isinstance(loaded, dict):
                raise ValueError(f"config file {a!r} holds a JSON {type(loaded).__name__}; "
                                 f"write an object {{\"lr\": 1e-3}}")
            values.update(loaded)
        elif eq or type(getattr(options.get(key), "default", None)) is bool:
            values[key] = val if eq else "true"              # a bare --flag switches it on
        else:
            raise ValueError(f"option {a!r} needs a value: write --{key}=VALUE")
    train, model = {}, {}
    for key, val in values.items():
        if key not in options:
            raise ValueError(f"unknown option --{key}; see `python train.py --help`")
        typ = type(options[key].default)
        if isinstance(val, str) and typ is bool:             # only six words: --dry_run=maybe fails
            if val.lower() not in ("1", "true", "yes", "0", "false", "no"):
                raise ValueError(f"--{key}={val!r} is not a boolean: write true/false, 1/0, yes/no")
            val = val.lower() in ("1", "true", "yes")
        elif isinstance(val, str) and typ is not str:
            try:
                val = typ(val)
            except ValueError:
                example = "a whole number (1, 16)" if typ is int else "a number (3e-3, 0.5)"
                raise ValueError(f"--{key}={val!r} is not a valid {typ.__name__}: write {example}") from None
        (train if key in TrainConfig.__dataclass_fields__ else model)[key] = val
    return TrainConfig(**train), model


def check_config(cfg):
    """One-line errors for option values that cannot work, before anything is loaded."""
    checks = [   # (options, the test each value must pass, the error's words); NaN fails every test
        (("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval",
          "rounds", "nproc"), lambda v: v >= 1, " must be at least 1"),
        (("warmup_iters", "seq_len", "refine_iters", "halt_at", "base_batch_tokens",
          "sample_tokens", "grad_clip", "weight_decay"), lambda v: v >= 0, " must not be negative"),
        (("lr", "refine_temperature"), lambda v: v > 0, " must be positive"),
        (("min_lr_ratio",), lambda v: 0 <= v <= 1, " must be in [0, 1]"),
        (("sampling_rate", "mfu"), lambda v: 0 < v <= 1, " must be in (0, 1]"),
        (("refine",), lambda v: v in ("softmax", "topk", "uniform"), ": choose softmax, topk, uniform"),
        (("parallel",), lambda v: v in ("ddp", "fsdp"), ": choose ddp or fsdp")]
    for keys, ok, rule in checks:
        for key in keys:
            if not ok(getattr(cfg, key)):
                raise ValueError(f"--{key}={getattr(cfg, key)!r}{rule}")
    if cfg.init_from != "scratch" and cfg.preset != TrainConfig.preset:
        raise ValueError(f"--preset={cfg.preset} does nothing with --init_from={cfg.init_from}: "
                         f"the model is the checkpoint's; drop --preset (or train from scratch)")
    if os.path.exists(cfg.out_dir) and not os.path.isdir(cfg.out_dir):
        raise ValueError(f"--out_dir={cfg.out_dir} is a file; name a folder")


def check_fit(cfg, meta, config, T):
    """The shards must fit the model (their token ids its vocabulary, T its context), and so must
    the final sample's prompt: returns (prompt ids, tokenizer); (None, None) if --sample_tokens=0."""
    if meta["tokenizer"]["n_vocab"] > config.vocab_size:
        raise ValueError(f"{cfg.data} uses {meta['tokenizer']['n_vocab']} token ids but the model "
                         f"has vocab_size={config.vocab_size}; compress the tokenizer "
                         f"(tokenizer_compress.py) and re-prepare, or pass --vocab_size")
    if T > config.block_size:
        raise ValueError(f"--seq_len={T} is longer than the model's context (block_size="
                         f"{config.block_size}); lower it, or train a longer context from scratch")
    if not cfg.sample_tokens:
        return None, None
    encoder = load_tokenizer(meta["tokenizer"]["source"])
    # no --sample_prompt: start at a document boundary, where the training text starts too
    prompt = encoder.encode_ordinary(cfg.sample_prompt) if cfg.sample_prompt else [meta["eot_token"]]
    if len(prompt) >= config.block_size:
        raise ValueError(f"--sample_prompt is {len(prompt)} tokens, the context ({config.block_size}): shorten it")
    return prompt, encoder


# ---- 2. the paper's training rules ------------------------------------------------------------
def batch_lr(cfg, batch_tokens):
    """Peak lr for this batch: lr ∝ batch^r, r = 0.5 [reported] (paper, Batch Size and Learning
    Rate; ../shared/PAPER.md §4): lr = lr0 * (batch / base_batch)^r, exactly lr0 when r = 0 or
    batch = base. A batch 4x the base gets 2x the lr, not 4x as the linear rule would give."""
    base = cfg.base_batch_tokens or batch_tokens
    return cfg.lr * (batch_tokens / base) ** cfg.lr_scaling_r


def lr_at(step, iters, peak, cfg):
    """Linear warmup to `peak`, then cosine decay to min_lr_ratio * peak at step `iters`."""
    if step < cfg.warmup_iters:   # step 0 already gets peak / warmup_iters: no step wasted at lr 0
        return peak * (step + 1) / cfg.warmup_iters
    progress = min(1.0, (step - cfg.warmup_iters) / max(1, iters - cfg.warmup_iters))   # 0 -> 1
    cosine = 0.5 * (1 + math.cos(math.pi * progress))                                  # 1 -> 0
    return peak * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


# Multiple-round training (paper, Multiple-Round Training; ../shared/PAPER.md §5): tiny models
# forget more [paper], so after a round its frozen model scores every training batch, and the next
# trains on N0 = R*N of them (R = 50%, two rounds [reported]) in one pass (official release [code]).
def select_batches(losses, rate, mode, temperature=1.0, seed=0, multinomial_limit=2 ** 24):
    """Sorted ids of the n0 = R*N batches (of N, by their losses) the next round trains on.
    softmax (the paper's rule [code README]): draw n0 WITHOUT replacement, p = softmax(loss / T).
    torch.multinomial takes at most 2^24 categories; beyond, the Gumbel-top-k trick draws from the
    same distribution. topk: the n0 highest losses. uniform: n0 at random (the control: as much
    repeated data, no preference for hard batches)."""
    if not 0 < rate <= 1:
        raise ValueError(f"--sampling_rate={rate} must be in (0, 1]")
    if mode not in ("softmax", "topk", "uniform"):
        raise ValueError(f"--refine={mode!r}: choose softmax, topk or uniform")
    losses = torch.as_tensor(losses, dtype=torch.float64)                      # (N,)
    n0, generator = max(1, round(rate * len(losses))), torch.Generator().manual_seed(seed)
    if mode == "topk":
        chosen = torch.topk(losses, n0).indices
    elif mode == "uniform":
        chosen = torch.randperm(len(losses), generator=generator)[:n0]
    elif len(losses) <= multinomial_limit:
        p = torch.softmax(losses / temperature, 0)
        chosen = torch.multinomial(p, n0, replacement=False, generator=generator)
    else:   # Gumbel-top-k: the top n0 of log p + Gumbel noise = n0 draws without replacement
        uniform = torch.rand(len(losses), generator=generator, dtype=torch.float64)
        chosen = torch.topk(losses / temperature - torch.log(-torch.log(uniform)), n0).indices
    return np.sort(chosen.numpy())


@torch.no_grad()
def refined_batches(run, round_number):
    """The batch ids round `round_number` trains on: the mean token loss, under the previous round's
    final model (scored in its grad_accum x world parts, as trained), of every batch round 1 trained
    on (the paper's N0: all N after a whole pass; a batch never trained on cannot have been
    forgotten, and scoring it would cost compute), then select_batches. Files out_dir/round{r}_*:
    batch_losses.npy ((N,), NaN: not scored; all-reduced and saved every 64 batches: an interrupted
    pass resumes), selection.npy, selection.json, whose `owner` (run id, options) keeps files of
    another run or other options from being reused. The losses need only the same run and batches:
    a copy of the run that chooses otherwise does not score again."""
    cfg, data = run.cfg, run.train_data
    prefix = os.path.join(cfg.out_dir, f"round{round_number}")
    owner = {"run_id": run.run_id, "refine": cfg.refine, "sampling_rate": cfg.sampling_rate,
             "temperature": cfg.refine_temperature, "batches": data.n}
    found = prefix + "_selection.json"
    summary = json.load(open(found)) if os.path.exists(found) else {}
    ours = isinstance(summary, dict) and summary.get("owner") == owner
    if ours and "selected" in summary and os.path.exists(prefix + "_selection.npy"):
        return np.load(prefix + "_selection.npy")                         # selected before a halt
    was = summary.get("owner") if isinstance(summary, dict) else None     # same run and batches
    ours = isinstance(was, dict) and [was.get("run_id"), was.get("batches")] == [run.run_id, data.n]
    ours = ours and os.path.exists(prefix + "_batch_losses.npy")
    losses = np.load(prefix + "_batch_losses.npy") if ours else np.full(data.n, np.nan)   # (N,)
    pool = data.visited(np.arange(data.n), 1, cfg.max_iters)                     # (N0,) round 1's
    todo, parts = pool[np.isnan(losses[pool])], cfg.grad_accum * run.world    # NaN: not scored
    run.model.eval()
    for start in run.tqdm(range(0, len(todo), 64), desc=f"scoring for round {round_number}"):
        ids = todo[start:start + 64]
        sums = torch.zeros(len(ids), dtype=torch.float64, device=run.device)   # summed token losses
        for j, batch_id in enumerate(ids):
            for part in range(run.rank, parts, run.world):
                x, y = (t.to(run.device) for t in data.rows(batch_id, part, parts))   # (B/parts, T)
                with run.autocast:
                    _, loss = run.model(x, y)
                    sums[j] += loss.double() * y.numel()
        losses[ids] = (distributed.sum_over_ranks(sums) / (data.B * data.T)).cpu().numpy()
        if run.rank == 0:        # after the all-reduce: every rank has read the old files by now
            np.save(prefix + "_batch_losses.tmp.npy", losses)
            os.replace(prefix + "_batch_losses.tmp.npy", prefix + "_batch_losses.npy")
            json.dump({"owner": owner}, open(prefix + "_selection.json", "w"))
    run.model.train()
    ids = pool[select_batches(losses[pool], cfg.sampling_rate, cfg.refine, cfg.refine_temperature,
                              seed=cfg.seed + round_number)]
    if run.rank == 0:            # the summary shows what the rule did: it kept the harder batches
        summary = {"round": round_number, "refine": cfg.refine, "sampling_rate": cfg.sampling_rate,
                   "temperature": cfg.refine_temperature, "owner": owner}
        for name, part in (("all", pool), ("selected", ids), ("dropped", np.setdiff1d(pool, ids))):
            stats = (("min", np.min), ("median", np.median), ("max", np.max)) if len(part) else ()
            summary[name] = {"n": len(part), **{key: f(losses[part]) for key, f in stats}}
        np.save(prefix + "_selection.npy", ids)
        json.dump(summary, open(prefix + "_selection.json", "w"), indent=1)
        print(f"round {round_number}: kept {len(ids)} of round 1's {len(pool)} batches ({cfg.refine}); median loss "
              f"selected {summary['selected']['median']:.3f}, dropped {summary['dropped'].get('median', math.nan):.3f}")
    return ids


# ---- 5. optimizer (3 data and 4 model are steps of main) --------------------------------------
def make_optimizer(model, cfg, fused=False):
    """AdamW (../shared/PAPER.md §4 [code]: betas 0.9/0.95, eps 1e-8). Weight decay only on
    matrices (embeddings, projections): RMSNorm gains are scales around 1; decay pulls them to 0."""
    groups = [{"params": [p for p in model.parameters() if (p.dim() >= 2) == decay],
               "weight_decay": cfg.weight_decay if decay else 0.0} for decay in (True, False)]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, fused=fused)


# ---- 6. the loop ------------------------------------------------------------------------------
@dataclass
class Progress:
    """The loop's whole state. A checkpoint saves it (with the RNG states), so a resumed run
    continues bit for bit and logs the same rows as an uninterrupted one."""
    round: int = 1                    # training round, 1..--rounds
    step: int = 0                     # optimizer steps done in this round
    total_steps: int = 0              # ... over all rounds (--halt_at counts these)
    tokens: int = 0                   # tokens trained on, all rounds: x axis of logs and curves
    best_val_loss: float = math.inf
    window_loss: torch.Tensor = None  # train loss summed since the last log row (on device)
    window_steps: int = 0             # steps in that sum: both are carried over a resume
    window_start: float = 0.0         # time.time() at the window's start (tokens/s; not saved)
    def load(self, ckpt, max_iters, batch_tokens):
        """Continue from checkpoint `ckpt` (older checkpoints lack the last three keys)."""
        self.round, self.step, self.best_val_loss = ckpt["round"], ckpt["step"], ckpt["best_val_loss"]
        window, self.window_steps = ckpt.get("log_window", [0.0, 0])
        self.window_loss.fill_(window)
        self.total_steps = ckpt.get("total_steps", self.step + (self.round - 1) * max_iters)
        self.tokens = ckpt.get("tokens", self.total_steps * batch_tokens)


def train_step(run, batch_id, lr):
    """One optimizer step on batch `batch_id`: grad_accum micro-steps, each on this rank's part of
    the batch ((B / (grad_accum * world), T) tokens); gradients averaged over micro-steps and ranks
    (DDP/FSDP reduce them in the last micro-step's backward). Returns the mean loss, on device."""
    cfg, parts, step_loss = run.cfg, run.cfg.grad_accum * run.world, 0.0
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    for micro in range(cfg.grad_accum):
        x, y = run.train_data.rows(batch_id, micro * run.world + run.rank, parts)   # (B/parts, T)
        x, y = (t.pin_memory().to(run.device, non_blocking=True) if run.cuda else t for t in (x, y))
        with distributed.grad_sync(run.model, on=micro == cfg.grad_accum - 1), run.autocast:
            _, loss = run.model(x, y)
            (loss / cfg.grad_accum).backward()    # gradients add up: their mean over micro-steps
        step_loss = step_loss + loss.detach() / cfg.grad_accum
    # clip once the step's gradients are complete (summed over micro-steps, reduced over ranks)
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.raw_model.parameters(), cfg.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return step_loss


@torch.no_grad()
def evaluate(run):
    """(val loss in nats per token, val bits per byte) over eval_iters val batches spread over the
    split. Every rank scores its part of every batch (the same forward passes, as FSDP needs)."""
    run.model.eval()
    n, total = min(run.cfg.eval_iters, run.val_data.n), torch.zeros((), device=run.device)
    for i in range(n):
        batch_id = i * run.val_data.n // n   # n batches spread over the split, the same each time
        x, y = (t.to(run.device) for t in run.val_data.rows(batch_id, run.rank, run.world))
        with run.autocast:
            _, loss = run.model(x, y)
            total += loss
    run.model.train()
    loss = distributed.sum_over_ranks(total).item() / (n * run.world)
    val = run.meta["splits"]["val"]                          # the split's token and byte counts
    return loss, bits_per_byte(loss, val["tokens"], val["bytes"])   # nats/token -> bits/byte


def log_train(run, progress, lr, bar):
    """A train row of log.jsonl: the mean loss since the last row (a host sync), tokens/s, MFU."""
    check_finite(run, progress)
    steps, seconds = progress.window_steps, time.time() - progress.window_start
    loss = distributed.sum_over_ranks(progress.window_loss).item() / run.world / steps
    tok_s = steps * run.batch_tokens / seconds
    mfu = steps * run.flops_per_step / seconds / run.peak_flops if run.peak_flops else None
    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:,.0f}", **({"mfu": f"{mfu:.1%}"} if mfu else {}))
    log_row(run, progress, loss=loss, lr=lr, tok_per_s=tok_s, mfu=mfu)
    progress.window_loss.zero_()
    progress.window_steps, progress.window_start = 0, time.time()


def evaluate_and_save(run, progress, bar, last=False):
    """An eval row of log.jsonl, the checkpoint out_dir/ckpt.pt and, if matplotlib is installed,
    curves.png, drawn at most once a minute (the first a minute in) and at each round's end:
    a draw takes ~1-2 s, which would double a small CPU run that evaluates every few steps. Its
    time is kept out of the tokens/s window: a speed (and reproduce.py's equal-time reads) must
    not depend on how often a run is evaluated."""
    start = time.time()
    val_loss, val_bpb = evaluate(run)
    progress.best_val_loss = min(progress.best_val_loss, val_loss)
    if run.rank == 0:
        bar.write(f"round {progress.round} step {progress.step}: val loss {val_loss:.4f}, bpb {val_bpb:.4f}")
    log_row(run, progress, val_loss=val_loss, val_bpb=val_bpb)
    save(run, progress, "ckpt.pt", sharded=True)
    draw = run.cfg.curves and (last or time.time() - run.drawn_at >= 60)
    if run.rank == 0 and draw and find_spec("matplotlib"):
        curves.draw([run.cfg.out_dir], os.path.join(run.cfg.out_dir, "curves.png"))
        run.drawn_at = time.time()
    progress.window_start += time.time() - start                    # the window skips this call


def check_finite(run, progress):
    """Nothing non-finite may reach a checkpoint: losses since the last log row, every weight."""
    if not distributed.all_finite(run.raw_model, ~torch.isfinite(progress.window_loss)):
        raise FloatingPointError(f"loss or weights became NaN/inf before step {progress.step} of "
                                 f"round {progress.round}; stopped without saving: the last good "
                                 f"checkpoint is {run.cfg.out_dir}/ckpt.pt (lower --lr?)")


def save(run, progress, name, sharded=False):
    """out_dir/name: weights (+ optimizer), configs, tokenizer identity, Progress and RNG states,
    all plain data (tensors, dicts, lists, str, numbers) that model.load_checkpoint reads
    weights-only. Keys are what eval.py, inherit.py and a resume read: keep them."""
    check_finite(run, progress)
    window = distributed.sum_over_ranks(progress.window_loss.clone()).item() / run.world   # mean
    state = {"model_config": asdict(run.model_config), "train_config": asdict(run.cfg),
             "tokenizer": run.meta["tokenizer"], "run_id": run.run_id, "world": run.world,
             **{key: getattr(progress, key) for key in ("round", "step", "total_steps", "tokens")},
             "best_val_loss": progress.best_val_loss, "log_window": [window, progress.window_steps],
             "rng": distributed.rng_state()}
    distributed.save(state, os.path.join(run.cfg.out_dir, name), run.raw_model, run.optimizer, sharded, run.rank)


def log_row(run, progress, **row):
    if run.rank == 0:
        with open(os.path.join(run.cfg.out_dir, "log.jsonl"), "a") as f:
            f.write(json.dumps(dict(round=progress.round, step=progress.step, tokens=progress.tokens, **row)) + "\n")


def main(argv):
    # ---- 1. config ------------------------------------------------------------------------------
    cfg, model_overrides = parse_config(argv)
    check_config(cfg)
    if cfg.dry_run:
        world = int(os.environ.get("WORLD_SIZE", cfg.nproc))    # torchrun's, or --nproc
        return distributed.memory_plan(cfg, model_overrides, world)
    world = int(os.environ.get("WORLD_SIZE", 1))      # torchrun's: checked before joining its group
    if cfg.batch_size % world:
        raise ValueError(f"--batch_size={cfg.batch_size} is not divisible by the {world} processes: use a multiple")
    rank, world, device = distributed.compute_init(cfg.device, cfg.parallel)
    torch.manual_seed(cfg.seed)         # the same initial weights on every rank
    meta, ckpt = load_meta(cfg.data), None
    if cfg.init_from == "scratch":      # a preset (+ overrides), the data's vocabulary padded to 64
        config = model_config(cfg.preset, **model_overrides)
        config.vocab_size = config.vocab_size or padded_vocab(meta["tokenizer"]["n_vocab"])
    else:                               # the configuration stored in the checkpoint
        path = os.path.join(cfg.out_dir, "ckpt.pt") if cfg.init_from == "resume" else cfg.init_from
        ckpt = load_checkpoint(path, trust=cfg.trust_checkpoint)
        config = ModelConfig(**{**ckpt["model_config"], **model_overrides})
        distributed.check_checkpoint(ckpt, path, model_overrides, meta, cfg, world)
    config.validate()
    T = cfg.seq_len or config.block_size   # tokens per training sequence
    prompt, encoder = check_fit(cfg, meta, config, T)    # the prompt too: now, not after training
    # ---- 3. data: an optimizer step reads one batch of batch_size x grad_accum rows of T tokens
    # Batch i is a fixed set of rows of the shuffled split (data/batches.py), so round 2 can score,
    # select and revisit batches by their ids, and a resume finds the exact batch it stopped at.
    shards = {"dtype": meta["dtype"], "seq_len": T, "seed": cfg.seed, "n_vocab": meta["tokenizer"]["n_vocab"]}
    rows = cfg.batch_size * cfg.grad_accum
    train_data = Batches(os.path.join(cfg.data, "train.bin"), batch=rows, **shards,
                         contiguous=cfg.contiguous_batches)
    # val batches: up to 8 sequences (a cheap forward), at least one per rank, a multiple of world
    val_rows = world * max(1, min(cfg.batch_size, 8) // world)
    val_data = Batches(os.path.join(cfg.data, "val.bin"), batch=val_rows, **shards)
    # ---- 4. model -------------------------------------------------------------------------------
    raw_model = Transformer(config).to(device)
    if ckpt is not None:
        raw_model.load_state_dict(ckpt["model"])
    raw_model.act_ckpt = cfg.act_ckpt   # recompute block activations in backward (model.trunk)
    cuda = device.startswith("cuda")    # bf16 autocast on CUDA, fp32 on CPU (FSDP: by its policy)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and cfg.parallel != "fsdp")
    model = distributed.wrap(raw_model, cfg.parallel, device, cfg.compile)   # DDP/FSDP: torchrun
    # ---- 5. optimizer ---------------------------------------------------------------------------
    # fused AdamW, one kernel: ~5x faster on CPU too (bench/train_bench.py); not for FSDP off CUDA
    optimizer = make_optimizer(raw_model, cfg, fused=cuda or (device == "cpu" and cfg.parallel != "fsdp"))
    batch_tokens = rows * T             # the "batch" of the paper's lr ∝ batch^r, in tokens
    peak_lr = batch_lr(cfg, batch_tokens)
    # ---- 6. the loop: its state is `progress`; `run` holds what stays fixed -------------------
    progress = Progress(window_loss=torch.zeros((), device=device), window_start=time.time())
    if cfg.init_from == "resume":
        distributed.load_optimizer(raw_model, optimizer, ckpt, cfg.out_dir)
        distributed.set_rng_state(ckpt["rng"])
        progress.load(ckpt, cfg.max_iters, batch_tokens)
    run = SimpleNamespace(
        cfg=cfg, meta=meta, model_config=config, model=model, raw_model=raw_model, cuda=cuda,
        optimizer=optimizer, train_data=train_data, val_data=val_data, device=device,
        drawn_at=time.time(),           # curves.png: the first a minute in
        autocast=autocast, rank=rank, world=world, peak_lr=peak_lr, batch_tokens=batch_tokens,
        flops_per_step=raw_model.flops_per_token(T) * batch_tokens / world,   # per rank
        peak_flops=device_peak_flops(device),       # datasheet peak; None on CPU (no MFU shown)
        run_id=ckpt.get("run_id", "old") if cfg.init_from == "resume" else os.urandom(6).hex(),
        tqdm=lambda it=None, **k: tqdm(it, disable=rank != 0, dynamic_ncols=True, **k))
    if rank == 0:
        resumed_at = (progress.round, progress.step) if cfg.init_from == "resume" else None
        distributed.keep_runs_apart(cfg.out_dir, resumed_at)   # old run aside, or its log trimmed
        announce(run)
    if train_loop(run, progress):              # False: --halt_at stopped it (no final sample)
        sample(run, prompt, encoder)
    elif rank == 0:
        print(f"halted at step {progress.step} (--halt_at); continue with --init_from=resume")
    if cuda and rank == 0:              # bench/gpu_check.py parses this line
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    distributed.finish()


def announce(run):
    """What is about to train: parameters, batches, tokens per step and the peak lr it got."""
    cfg, T, rows = run.cfg, run.train_data.T, run.train_data.B
    counts = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in run.raw_model.param_count().items())
    name = cfg.preset if cfg.init_from == "scratch" else cfg.init_from
    print(f"model {name}: {counts} parameters; {kernel_paths(run.model_config, run.device)}")
    scaled = f" = {cfg.lr:g} x ({run.batch_tokens} / {cfg.base_batch_tokens})^{cfg.lr_scaling_r}"
    print(f"data {cfg.data}: {run.train_data.n} batches of {rows}x{T} tokens; {run.batch_tokens:,} "
          f"tokens per step; device {run.device}, {run.world} process(es); peak lr "
          f"{run.peak_lr:.3g}" + scaled * (run.peak_lr != cfg.lr))
    if run.batch_tokens > 4 * 2 ** 20:  # PAPER.md §4: tiny models suffer past ~4M tokens a step
        print(f"warning: {run.batch_tokens:,} tokens per step: above the ~4M tokens tiny models tolerate [reported]")


def train_loop(run, progress):
    """Every round from `progress` on (paper, Multiple-Round Training): round 1 over all N batches,
    each later round over those the previous round's model chose. False if --halt_at stopped it."""
    cfg = run.cfg
    while progress.round <= cfg.rounds:
        ids = refined_batches(run, progress.round) if progress.round > 1 else np.arange(run.train_data.n)
        iters = cfg.max_iters if progress.round == 1 else cfg.refine_iters or len(ids)
        bar = run.tqdm(total=iters, initial=min(progress.step, iters), desc=f"round {progress.round}")
        with bar:   # closed however the round ends
            while progress.step < iters:
                lr = lr_at(progress.step, iters, run.peak_lr, cfg)   # restarts every round
                batch_id = run.train_data.order(ids, progress.round, progress.step)  # epochs of ids
                progress.window_loss += train_step(run, batch_id, lr)
                # one more step: in the round, over all rounds, in the loss window of the next row
                progress.step, progress.total_steps, progress.window_steps = \
                    progress.step + 1, progress.total_steps + 1, progress.window_steps + 1
                progress.tokens += run.batch_tokens
                bar.update(1)
                if progress.step % cfg.log_interval == 0 or progress.step == iters:  # only syncs
                    log_train(run, progress, lr, bar)
                halt = progress.total_steps == cfg.halt_at
                if progress.step % cfg.eval_interval == 0 or progress.step == iters or halt:
                    evaluate_and_save(run, progress, bar, last=progress.step == iters or halt)
                if halt:
                    return False
        if not os.path.exists(os.path.join(cfg.out_dir, f"round{progress.round}.pt")):
            save(run, progress, f"round{progress.round}.pt")        # the model each round ends with
        progress.round, progress.step = progress.round + 1, 0
    return True


def sample(run, prompt, encoder):
    """The final evaluation and, on rank 0, a sample continuing the prompt (from the whole model:
    under FSDP its shards are gathered into a plain copy first)."""
    val_loss, val_bpb = evaluate(run)
    if encoder:
        weights = distributed.full_state_dict(run.raw_model)      # a collective under FSDP
        if run.rank == 0:
            sampler = run.raw_model
            if run.cfg.parallel == "fsdp":          # sample from a plain copy of the gathered weights
                sampler = Transformer(run.model_config).to(run.device)
                sampler.load_state_dict(weights)
            n_new = min(run.cfg.sample_tokens, run.model_config.block_size - len(prompt))
            generator = torch.Generator(run.device).manual_seed(run.cfg.seed)
            out = sampler.generate(torch.tensor([prompt], device=run.device), n_new, temperature=0.8,  # (1, len)
                                   top_k=200, generator=generator, n_vocab=encoder.n_vocab)
            print("-" * 80 + "\n" + decode_sample(encoder, out[0].tolist()) + "\n" + "-" * 80)
    if run.rank == 0:
        print(f"final val loss {val_loss:.4f}, val bits-per-byte {val_bpb:.4f} (checkpoint {run.cfg.out_dir}/ckpt.pt)")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        sys.exit(f"train.py: error: {e}")
    except KeyboardInterrupt:
        sys.exit("train.py: interrupted; continue from the last checkpoint: the same command with --init_from=resume")
