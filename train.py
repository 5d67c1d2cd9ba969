"""
train.py — train a nanopangu model. Reads top to bottom: config, data, model, optimizer, loop.

    python train.py                                   # tiny preset on data/shakespeare-compact (README), CPU or GPU
    python train.py my_config.json --lr=1e-3          # JSON config file, then --key=value overrides
    python train.py --preset=pangu-1b-pro --data=data/mycorpus-48k --batch_size=64 --grad_accum=4
    torchrun --standalone --nproc_per_node=8 train.py --preset=pangu-1b-pro ...   # DDP (NCCL / gloo)
    python train.py --rounds=2 --sampling_rate=0.5    # multiple-round training with data refining (§5)
    python train.py --help                            # every option with its default

Model options (--n_layer=4, --vocab_size=..., any ModelConfig field) override the chosen --preset.
"""
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, asdict

import numpy as np
import torch
import torch.nn.functional as F

from model import (ModelConfig, PRESETS, Transformer, model_config, device_peak_flops, padded_vocab,
                   load_checkpoint, save_checkpoint)


def opt(default, help):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    # data and model
    data: str = opt("data/shakespeare-compact", "folder written by data/prepare.py (train.bin, val.bin, meta.json)")
    preset: str = opt("tiny", f"model preset: {', '.join(PRESETS)}")
    init_from: str = opt("scratch", "scratch | resume (from out_dir/ckpt.pt) | PATH of a checkpoint to start from (e.g. sliced or inherited weights)")
    out_dir: str = opt("out", "checkpoints, logs, selections")
    # batch: one optimizer step = batch_size sequences x grad_accum micro-steps x seq_len tokens
    batch_size: int = opt(16, "sequences per micro-step, over all processes (each DDP rank takes batch_size/world)")
    grad_accum: int = opt(1, "micro-steps per optimizer step")
    seq_len: int = opt(0, "training sequence length; 0 = the model's context (block_size)")
    # optimizer: AdamW, linear warmup, cosine decay to a floor (PAPER.md §4: betas 0.9/0.95, wd 0.1, clip 1.0)
    lr: float = opt(3e-3, "peak learning rate, before batch-size scaling")
    min_lr_ratio: float = opt(0.1, "cosine decay floor as a fraction of the peak lr")
    warmup_iters: int = opt(15, "linear warmup steps (each round restarts its schedule)")
    max_iters: int = opt(150, "optimizer steps (of round 1 when --rounds > 1); the default fits ~10 min on 2 CPU cores")
    weight_decay: float = opt(0.1, "AdamW weight decay, on matrices only (not norms)")
    beta1: float = opt(0.9, "AdamW beta1")
    beta2: float = opt(0.95, "AdamW beta2")
    grad_clip: float = opt(1.0, "clip the global gradient norm; 0 = off")
    # batch size and learning rate (paper §5; PAPER.md §4): lr = lr * (batch_tokens / base_batch_tokens) ** r
    lr_scaling_r: float = opt(0.5, "power r of the lr/batch-size rule lr = lr * (batch/base_batch)^r (paper: r = 0.5); 0 disables")
    base_batch_tokens: int = opt(0, "batch (tokens per step) at which --lr was tuned; 0 = this run's batch (no scaling)")
    # multiple-round training with loss-based data refining (paper §5; PAPER.md §5)
    rounds: int = opt(1, "training rounds; round r > 1 trains on the batches selected by the round r-1 model's losses")
    sampling_rate: float = opt(0.5, "R: fraction of the N training batches drawn for the next round (paper: 50%)")
    refine: str = opt("softmax", "softmax: draw R*N batches w/o replacement with p = softmax(loss/T) (paper); topk: the R*N hardest; uniform: control")
    refine_temperature: float = opt(1.0, "T in softmax(loss / T) (official release: 1)")
    refine_iters: int = opt(0, "optimizer steps of each later round; 0 = max_iters")
    # evaluation, logging, checkpoints
    eval_interval: int = opt(50, "evaluate val loss / bits-per-byte and checkpoint every N steps")
    eval_iters: int = opt(20, "val batches per evaluation")
    log_interval: int = opt(10, "log train loss every N steps (the only host-device syncs of the loop)")
    sample_tokens: int = opt(200, "tokens to sample at the end (0 = none)")
    sample_prompt: str = opt("", "prompt of the final sample; empty = start of a document")
    halt_at: int = opt(0, "checkpoint and stop after this step as if interrupted, e.g. to split a run over time-limited jobs (0 = off)")
    # system
    device: str = opt("auto", "auto (cuda if available, else cpu) | cpu | cuda | cuda:N")
    compile: bool = opt(False, "torch.compile the model")
    seed: int = opt(1337, "seed for init, data order and sampling")


def parse_config(argv):
    """TrainConfig and model overrides from: defaults < JSON config file < --key=value arguments."""
    train_keys = {f.name: f for f in fields(TrainConfig)}
    model_keys = {f.name: f for f in fields(ModelConfig)}
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        preset = PRESETS[TrainConfig.preset]
        for title, keys, obj in (("training options", train_keys, TrainConfig()),
                                 (f"model options (defaults: the {TrainConfig.preset} preset; see ModelConfig in model.py)", model_keys, preset)):
            print(f"{title}:")
            for k, f in keys.items():
                print(f"  {'--' + k + '=' + str(getattr(obj, k)):<34} {f.metadata.get('help', '')}")
        sys.exit(0)
    values = {}
    for a in argv:
        if not a.startswith("--"):
            if not os.path.exists(a):
                raise ValueError(f"config file {a!r} not found (options are written --key=value)")
            with open(a) as fh:
                values.update(json.load(fh))
        else:
            key, eq, val = a[2:].partition("=")
            if not eq:
                raise ValueError(f"option {a!r} needs a value: write --{key}=VALUE")
            values[key] = val
    train, model = {}, {}
    for key, val in values.items():
        f = train_keys.get(key) or model_keys.get(key)
        if f is None:
            raise ValueError(f"unknown option --{key}; see `python train.py --help`")
        typ = type(f.default)
        if isinstance(val, str) and typ is not str:
            try:
                val = val.lower() in ("1", "true", "yes") if typ is bool else typ(val)
            except ValueError:
                raise ValueError(f"--{key}={val!r} is not a valid {typ.__name__}") from None
        (train if key in train_keys else model)[key] = val
    return TrainConfig(**train), model


def check_config(cfg):
    """One-line errors for option values that cannot work, before anything is loaded."""
    for key in ("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval", "rounds"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"--{key}={getattr(cfg, key)} must be at least 1")
    for key in ("warmup_iters", "seq_len", "refine_iters", "halt_at", "base_batch_tokens", "sample_tokens", "grad_clip", "weight_decay"):
        if getattr(cfg, key) < 0:
            raise ValueError(f"--{key}={getattr(cfg, key)} must not be negative")
    if not cfg.lr > 0 or not cfg.refine_temperature > 0:
        raise ValueError(f"--lr={cfg.lr} and --refine_temperature={cfg.refine_temperature} must be positive")
    if not 0 <= cfg.min_lr_ratio <= 1:
        raise ValueError(f"--min_lr_ratio={cfg.min_lr_ratio} must be in [0, 1]")
    select_batches([0.0], cfg.sampling_rate, cfg.refine)          # checks --sampling_rate and --refine


def batch_lr(cfg, batch_tokens):
    """Paper §5 (PAPER.md §4, [reported]): scale the lr with the batch by a power law,
    lr = lr0 * (batch / base_batch)^r, r = 0.5. Exactly lr0 when r = 0 or the batch is the base batch."""
    base = cfg.base_batch_tokens or batch_tokens
    return cfg.lr * (batch_tokens / base) ** cfg.lr_scaling_r


def lr_at(step, iters, peak, cfg):
    """Linear warmup to `peak`, then cosine decay to min_lr_ratio * peak at `iters`."""
    if step < cfg.warmup_iters:
        return peak * (step + 1) / cfg.warmup_iters
    progress = min(1.0, (step - cfg.warmup_iters) / max(1, iters - cfg.warmup_iters))
    return peak * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


# ------------------------------------------------------------------------------------------------
# Data: a fixed packing of the token stream into batches, so that batches can be scored and selected
# (multiple-round training) and a run can resume at the exact batch it stopped at.
# ------------------------------------------------------------------------------------------------
class Batches:
    """The train split cut into sequences of seq_len+1 tokens (consecutive sequences share one token:
    the last target of one is the first input of the next), shuffled ONCE with the seed and grouped into
    N batches of batch_size sequences. Batch id b is always the same sequences. A round reads a list of
    batch ids (all of them, or a refined selection) in a fresh order per epoch; DDP rank r of w takes
    rows r*B/w .. (r+1)*B/w of each batch, so the data stream does not depend on the number of processes."""

    def __init__(self, path, dtype, seq_len, batch_size, seed):
        self.tokens = np.memmap(path, dtype=dtype, mode="r")
        self.T, self.B, self.seed = seq_len, batch_size, seed
        n_seq = (len(self.tokens) - 1) // seq_len
        self.n = n_seq // batch_size                                     # N: number of batches
        if self.n == 0:
            raise ValueError(f"{path} has {len(self.tokens)} tokens: fewer than one batch of {batch_size} x "
                             f"{seq_len}; lower --batch_size/--seq_len or add text")
        self.packing = np.random.default_rng(seed).permutation(n_seq)[:self.n * batch_size].reshape(self.n, batch_size)

    def rows(self, batch_id, rank=0, world=1):
        seqs = self.packing[batch_id]
        seqs = seqs[rank * self.B // world:(rank + 1) * self.B // world]
        x = np.stack([self.tokens[s * self.T:s * self.T + self.T + 1] for s in seqs]).astype(np.int64)
        return torch.from_numpy(x[:, :-1]), torch.from_numpy(x[:, 1:])  # inputs, targets (b, T)

    def order(self, ids, round_, micro_step):
        """Batch id read at global micro-step k of a round: epochs over `ids`, reshuffled each epoch.
        The epoch's permutation is a function of (seed, round, epoch) alone, so a resumed run reads the
        same batches; it is computed once per epoch, not per step (N can be millions on a big corpus)."""
        epoch, i = divmod(micro_step, len(ids))
        key = (round_, epoch, len(ids))
        if getattr(self, "_perm_key", None) != key:
            self._perm_key, self._perm = key, np.random.default_rng([self.seed, round_, epoch]).permutation(len(ids))
        return int(ids[self._perm[i]])


def select_batches(losses, rate, mode, temperature=1.0, seed=0, multinomial_limit=2 ** 24):
    """Loss-based data refining (paper §5; official release README, PAPER.md §5): keep n0 = R*N of the N
    batches. softmax: draw n0 WITHOUT replacement with p = softmax(loss / T) (torch.multinomial, limited
    to 2^24 categories: beyond that the Gumbel-top-k trick draws the same distribution); topk: the n0
    highest losses; uniform: n0 at random (the control: as much repeated data, no preference)."""
    if not 0 < rate <= 1:
        raise ValueError(f"--sampling_rate={rate} must be in (0, 1]")
    if mode not in ("softmax", "topk", "uniform"):
        raise ValueError(f"--refine={mode!r}: choose softmax, topk or uniform")
    losses = torch.as_tensor(losses, dtype=torch.float64)
    n0 = max(1, round(rate * len(losses)))
    g = torch.Generator().manual_seed(seed)
    if mode == "topk":
        chosen = torch.topk(losses, n0).indices
    elif mode == "uniform":
        chosen = torch.randperm(len(losses), generator=g)[:n0]
    elif len(losses) <= multinomial_limit:
        chosen = torch.multinomial(torch.softmax(losses / temperature, 0), n0, replacement=False, generator=g)
    else:   # Gumbel-top-k: argtop-n0 of log p + Gumbel noise = sequential sampling without replacement
        gumbel = -torch.log(-torch.log(torch.rand(len(losses), generator=g, dtype=torch.float64)))
        chosen = torch.topk(losses / temperature + gumbel, n0).indices
    return np.sort(chosen.numpy())


def main(argv):
    cfg, model_overrides = parse_config(argv)
    check_config(cfg)

    # ---- processes and device --------------------------------------------------------------------
    ddp = "RANK" in os.environ
    rank, world = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if ddp else (0, 1)
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if ddp:
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    master = rank == 0
    if cfg.batch_size % world:
        raise ValueError(f"--batch_size={cfg.batch_size} is not divisible by the {world} processes; use a multiple of {world}")
    cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()   # fp32 on CPU
    torch.manual_seed(cfg.seed)

    # ---- data ------------------------------------------------------------------------------------
    meta_path = os.path.join(cfg.data, "meta.json")
    if not os.path.exists(meta_path):
        raise FileNotFoundError(f"{meta_path} not found: run `python data/prepare.py` first (the README's first command "
                                f"makes the default data) or point --data at its output")
    with open(meta_path) as f:
        meta = json.load(f)

    # ---- model: preset + overrides, or the configuration stored in a checkpoint --------------------
    ckpt = None
    if cfg.init_from != "scratch":
        path = os.path.join(cfg.out_dir, "ckpt.pt") if cfg.init_from == "resume" else cfg.init_from
        ckpt = load_checkpoint(path)
        mcfg = ModelConfig(**{**ckpt["model_config"], **model_overrides})
        if mcfg != ModelConfig(**ckpt["model_config"]):
            changed = {k: v for k, v in model_overrides.items() if ckpt["model_config"][k] != v}
            raise ValueError(f"{path} was trained with another model config (you changed {changed}); "
                             f"drop those options or start from scratch")
        if ckpt["tokenizer"]["sha256"] != meta["tokenizer"]["sha256"]:
            raise ValueError(f"{path} was trained with tokenizer {ckpt['tokenizer']['name']!r} but {cfg.data} was "
                             f"made with {meta['tokenizer']['name']!r}; re-run data/prepare.py --tokenizer="
                             f"{ckpt['tokenizer']['source']} or slice the checkpoint with tokenizer_compress.py")
    else:
        mcfg = model_config(cfg.preset, **model_overrides)
        if not mcfg.vocab_size:                     # CPU presets: the data's vocabulary, padded to 64
            mcfg.vocab_size = padded_vocab(meta["tokenizer"]["n_vocab"])
    if meta["tokenizer"]["n_vocab"] > mcfg.vocab_size:
        raise ValueError(f"{cfg.data} uses {meta['tokenizer']['n_vocab']} token ids but the model has vocab_size="
                         f"{mcfg.vocab_size}; compress the tokenizer (tokenizer_compress.py) and re-prepare, or pass --vocab_size")
    T = cfg.seq_len or mcfg.block_size
    if T > mcfg.block_size:
        raise ValueError(f"--seq_len={T} is longer than the model's context (block_size={mcfg.block_size}); lower it, "
                         f"or train a model with a longer context (--block_size, from scratch)")
    model = Transformer(mcfg).to(device)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    train_data = Batches(os.path.join(cfg.data, "train.bin"), meta["dtype"], T, cfg.batch_size, cfg.seed)
    val_data = Batches(os.path.join(cfg.data, "val.bin"), meta["dtype"], T, min(cfg.batch_size, 8), cfg.seed)
    tokens_per_byte = meta["splits"]["val"]["tokens"] / meta["splits"]["val"]["bytes"]
    raw_model = model
    if cfg.compile:
        model = torch.compile(model)
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.device(device).index] if cuda else None)

    # ---- optimizer: AdamW, weight decay on matrices only --------------------------------------------
    params = [p for p in raw_model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, fused=cuda)
    batch_tokens = cfg.batch_size * cfg.grad_accum * T
    peak_lr = batch_lr(cfg, batch_tokens)

    # ---- where we are: round, step in the round, refined selection --------------------------------
    round_, step, best = 1, 0, float("inf")
    if cfg.init_from == "resume":
        optimizer.load_state_dict(ckpt["optimizer"])
        round_, step, best = ckpt["round"], ckpt["step"], ckpt.get("best_val_loss", best)
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])
        random.setstate(ckpt["rng"]["python"])
    os.makedirs(cfg.out_dir, exist_ok=True)
    log_file = open(os.path.join(cfg.out_dir, "log.jsonl"), "a") if master else None

    def log(**row):
        if master:
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()

    def checkpoint(path):
        if master:
            save_checkpoint({"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                             "model_config": asdict(mcfg), "train_config": asdict(cfg), "tokenizer": meta["tokenizer"],
                             "round": round_, "step": step, "best_val_loss": best,
                             "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}},
                            path)

    @torch.no_grad()
    def evaluate():
        """Mean val loss over eval_iters fixed batches (all ranks, averaged) and bits-per-byte."""
        model.eval()
        n = min(cfg.eval_iters, val_data.n)
        total = torch.zeros((), device=device)
        for i in range(rank, n, world):
            x, y = (t.to(device) for t in val_data.rows(i * val_data.n // n))
            with autocast:
                total += raw_model(x, y)[1]
        if ddp:
            torch.distributed.all_reduce(total)
        model.train()
        loss = total.item() / n
        return loss, loss / math.log(2) * tokens_per_byte          # nats/token -> bits/byte

    n_params = raw_model.param_count()
    if master:
        print(f"model {cfg.preset if cfg.init_from == 'scratch' else cfg.init_from}: {n_params['total'] / 1e6:.2f}M parameters "
              f"(embedding {n_params['embedding'] / 1e6:.2f}M, lm head {n_params['lm_head'] / 1e6:.2f}M, rest {n_params['rest'] / 1e6:.2f}M)")
        print(f"data {cfg.data}: {train_data.n} batches of {cfg.batch_size}x{T} tokens; {batch_tokens:,} tokens per step; "
              f"device {device}, {world} process(es)")
        print(f"peak lr {peak_lr:.3g}" + (f" = {cfg.lr:g} x ({batch_tokens} / {cfg.base_batch_tokens})^{cfg.lr_scaling_r} (paper §5 rule)"
                                          if peak_lr != cfg.lr else ""))
        if batch_tokens > 4 * 2 ** 20:
            print(f"warning: {batch_tokens:,} tokens per step is above the ~4M tokens the paper finds tiny models tolerate (§5)")

    peak_flops = device_peak_flops(device)
    flops_per_step = raw_model.flops_per_token(T) * batch_tokens / world
    round_iters = lambda r: cfg.max_iters if r == 1 else (cfg.refine_iters or cfg.max_iters)
    from tqdm import tqdm
    for round_ in range(round_, cfg.rounds + 1):
        iters, done_before = round_iters(round_), sum(round_iters(r) for r in range(1, round_))
        if step >= iters:              # resumed at the very end of this round: go on with the next one
            if not os.path.exists(os.path.join(cfg.out_dir, f"round{round_}.pt")):
                checkpoint(os.path.join(cfg.out_dir, f"round{round_}.pt"))
            step = 0
            continue
        ids = np.arange(train_data.n) if round_ == 1 else refined_batches(cfg, model, raw_model, train_data, round_, autocast, device, rank, world)
        bad = torch.zeros((), dtype=torch.bool, device=device)            # any non-finite loss since last check
        loss_acc = torch.zeros((), device=device)
        t0, bar = time.time(), tqdm(total=iters, initial=step, desc=f"round {round_}", disable=not master, dynamic_ncols=True)
        while step < iters:
            lr = lr_at(step, iters, peak_lr, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for micro in range(cfg.grad_accum):
                x, y = train_data.rows(train_data.order(ids, round_, step * cfg.grad_accum + micro), rank, world)
                if cuda:
                    x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
                sync = not ddp or micro == cfg.grad_accum - 1              # DDP: all-reduce grads once per step
                with (nullcontext() if sync else model.no_sync()), autocast:
                    loss = model(x, y)[1] / cfg.grad_accum
                loss.backward()
                loss_acc += loss.detach()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            bad |= ~torch.isfinite(loss_acc)
            step += 1
            bar.update(1)
            if step % cfg.log_interval == 0 or step == iters:
                if bad.item():
                    raise FloatingPointError(f"loss became NaN/inf before step {step} of round {round_}; stopped without saving: "
                                             f"the last good checkpoint is {os.path.join(cfg.out_dir, 'ckpt.pt')} (lower --lr?)")
                n = cfg.log_interval if step % cfg.log_interval == 0 else step % cfg.log_interval
                if ddp:                                                    # log the mean over all ranks
                    torch.distributed.all_reduce(loss_acc)
                    loss_acc /= world
                dt, t0 = time.time() - t0, time.time()
                train_loss = loss_acc.item() / n
                loss_acc.zero_()
                tok_s = n * batch_tokens / dt
                mfu = n * flops_per_step / dt / peak_flops
                bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{tok_s:,.0f}", mfu=f"{mfu:.1%}")
                log(round=round_, step=step, loss=train_loss, lr=lr, tok_per_s=tok_s, mfu=mfu)
            halt = done_before + step == cfg.halt_at                       # halt_at counts steps over all rounds
            if step % cfg.eval_interval == 0 or step == iters or halt:
                val_loss, val_bpb = evaluate()
                best = min(best, val_loss)
                bar.write(f"round {round_} step {step}: val loss {val_loss:.4f}, val bits-per-byte {val_bpb:.4f}")
                log(round=round_, step=step, val_loss=val_loss, val_bpb=val_bpb)
                checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"))
            if halt:
                bar.close()
                if master:
                    print(f"halted at step {step} (--halt_at); continue with --init_from=resume")
                return
        bar.close()
        checkpoint(os.path.join(cfg.out_dir, f"round{round_}.pt"))
        step = 0

    val_loss, val_bpb = evaluate()
    if master and cfg.sample_tokens:
        from tokenizer_compress import load_tokenizer, decode_sample
        enc = load_tokenizer(meta["tokenizer"]["source"])
        prompt = enc.encode_ordinary(cfg.sample_prompt) if cfg.sample_prompt else [meta["eot_token"]]
        n_new = min(cfg.sample_tokens, mcfg.block_size - len(prompt))
        out = raw_model.generate(torch.tensor([prompt], device=device), n_new, temperature=0.8, top_k=200,
                                 generator=torch.Generator(device).manual_seed(cfg.seed), n_vocab=enc.n_vocab)
        print("-" * 80 + "\n" + decode_sample(enc, out[0].tolist()) + "\n" + "-" * 80)
    if master:
        print(f"final val loss {val_loss:.4f}, val bits-per-byte {val_bpb:.4f} (checkpoint {os.path.join(cfg.out_dir, 'ckpt.pt')})")
    if ddp:
        torch.distributed.destroy_process_group()


@torch.no_grad()
def refined_batches(cfg, model, raw_model, data, round_, autocast, device, rank, world):
    """The batch ids round `round_` trains on: score every batch with the (frozen) model from the end of the
    previous round — losses saved to out_dir/round{r}_batch_losses.npy as they come, so an interrupted
    scoring pass resumes — then select (select_batches) and save the ids and a summary."""
    from tqdm import tqdm
    sel_path = os.path.join(cfg.out_dir, f"round{round_}_selection.npy")
    if os.path.exists(sel_path):
        return np.load(sel_path)
    loss_path = os.path.join(cfg.out_dir, f"round{round_}_batch_losses.npy")
    losses = np.load(loss_path) if os.path.exists(loss_path) else np.full(data.n, np.nan)
    todo = np.flatnonzero(np.isnan(losses))
    model.eval()
    chunk = 64 * world
    for start in tqdm(range(0, len(todo), chunk), desc=f"scoring {data.n} batches for round {round_}",
                      disable=rank != 0, dynamic_ncols=True):
        part = torch.zeros(len(todo[start:start + chunk]), dtype=torch.float64, device=device)
        for j in range(rank, len(part), world):              # each rank scores whole batches
            x, y = (t.to(device) for t in data.rows(todo[start + j]))
            with autocast:
                part[j] = raw_model(x, y)[1].double()
        if world > 1:
            torch.distributed.all_reduce(part)
        losses[todo[start:start + chunk]] = part.cpu().numpy()
        if rank == 0:
            np.save(loss_path + ".tmp.npy", losses)
            os.replace(loss_path + ".tmp.npy", loss_path)
    model.train()
    ids = select_batches(losses, cfg.sampling_rate, cfg.refine, cfg.refine_temperature, seed=cfg.seed + round_)
    if rank == 0:
        dropped = np.setdiff1d(np.arange(data.n), ids)
        stats = lambda a: {"n": int(len(a)), "min": float(losses[a].min()), "median": float(np.median(losses[a])),
                           "max": float(losses[a].max())} if len(a) else {"n": 0}
        summary = {"round": round_, "refine": cfg.refine, "sampling_rate": cfg.sampling_rate,
                   "temperature": cfg.refine_temperature, "all": stats(np.arange(data.n)),
                   "selected": stats(ids), "dropped": stats(dropped)}
        with open(os.path.join(cfg.out_dir, f"round{round_}_selection.json"), "w") as f:
            json.dump(summary, f, indent=1)
        np.save(sel_path, ids)
        print(f"round {round_}: kept {len(ids)} of {data.n} batches ({cfg.refine}); loss median selected "
              f"{summary['selected']['median']:.3f} vs dropped {summary['dropped'].get('median', float('nan')):.3f}")
    return ids


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        sys.exit(f"train.py: error: {e}")
