"""
train.py — train a nanopangu model. Reads top to bottom: config, data, model, optimizer, loop.

    python train.py                                   # tiny preset on data/shakespeare-compact (README), CPU or GPU
    python train.py my_config.json --lr=1e-3          # JSON config file, then --key=value overrides
    python train.py --preset=pangu-1b-pro --data=data/mycorpus-48k --batch_size=64 --grad_accum=4
    torchrun --standalone --nproc_per_node=8 train.py --preset=pangu-1b-pro ...   # DDP (NCCL / gloo)
    torchrun ... train.py --preset=pangu-1.5b-pro --parallel=fsdp --act_ckpt          # sharded (FSDP2)
    python train.py --preset=pangu-1b-pro --batch_size=64 --dry_run                # memory plan, allocates nothing
    python train.py --rounds=2 --sampling_rate=0.5    # multiple-round training with data refining (§5)
    python train.py --help                            # every option with its default

Model options (--n_layer=4, --vocab_size=..., any ModelConfig field) override the chosen --preset.
"""
import json
import math
import os
import random
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, asdict

import numpy as np
import torch

from data.batches import Batches
from model import (ModelConfig, PRESETS, PRESET_N_VOCAB, Transformer, model_config, device_peak_flops, padded_vocab,
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
    parallel: str = opt("ddp", "under torchrun: ddp (every rank a full copy) | fsdp (parameters, gradients, optimizer state sharded)")
    act_ckpt: bool = opt(False, "activation checkpointing: keep only each block's input, recompute the rest in backward")
    dry_run: bool = opt(False, "print the memory plan (parameters, bytes per GPU, FLOPs) for these options and exit; allocates nothing")
    gpu: str = opt("H100:80", "--dry_run: the GPU to plan for, NAME[:GB] (NAME in model.GPU_PEAK_BF16)")
    mfu: float = opt(0.4, "--dry_run: the model FLOPs utilisation that turns FLOPs into tokens/s")
    nproc: int = opt(8, "--dry_run without torchrun: the number of GPUs to plan for")
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
            f = train_keys.get(key) or model_keys.get(key)
            if not eq and f is not None and type(f.default) is bool:
                val = "true"                                         # a bare --flag switches it on
            elif not eq:
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
    for key in ("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval", "rounds", "nproc"):
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
    if not 0 < cfg.mfu <= 1:
        raise ValueError(f"--mfu={cfg.mfu} must be in (0, 1]")
    if cfg.parallel not in ("ddp", "fsdp"):
        raise ValueError(f"--parallel={cfg.parallel!r}: choose ddp or fsdp")


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


# ------------------------------------------------------------------------------------------------
# FSDP checkpoints (torch.distributed.checkpoint): each rank writes its own shards of the model and the
# optimizer into a directory; it is written under a temporary name and renamed when every rank is done,
# so a crash mid-save never leaves a directory that ckpt.pt names but that does not load.
# ------------------------------------------------------------------------------------------------
def save_sharded(model, optimizer, out_dir, round_, step, master):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict
    name = f"ckpt-r{round_}-s{step}.dcp"
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=os.path.join(out_dir, name + ".tmp"))
    torch.distributed.barrier()                                          # every rank has written its part
    if master:
        shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)
        os.replace(os.path.join(out_dir, name + ".tmp"), os.path.join(out_dir, name))
    return name


def load_sharded(model, optimizer, path):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} (the shards ckpt.pt names) is missing; start again from its weights with --init_from")
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optimizer": optim_sd}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])


def full_state_dict(model, fsdp):
    """The whole model's weights on rank 0 (CPU): a collective under FSDP, which gathers every shard."""
    if not fsdp:
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, StateDictOptions
    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


# ------------------------------------------------------------------------------------------------
# The memory plan (--dry_run): what a run needs per GPU, from the shapes alone (meta device, no memory).
# ------------------------------------------------------------------------------------------------
def memory_plan(cfg, mcfg, world):
    """Print parameters, bytes per GPU (weights, gradients, AdamW state, activations) with and without FSDP
    and activation checkpointing, FLOPs per token and the tokens/s an MFU implies. Allocates nothing."""
    from model import GPU_PEAK_BF16
    gpu, _, gb = cfg.gpu.partition(":")
    if gpu not in GPU_PEAK_BF16 or not (gb or "80").replace(".", "", 1).isdigit():
        raise ValueError(f"--gpu={cfg.gpu!r}: write NAME or NAME:GB with NAME one of {', '.join(GPU_PEAK_BF16)}")
    capacity = float(gb or 80) * 1e9
    T = cfg.seq_len or mcfg.block_size
    with torch.device("meta"):
        model = Transformer(mcfg)
    n = model.param_count()
    block = sum(p.numel() for p in model.layers[0].parameters())
    P, micro = n["total"], cfg.batch_size // world * T                    # micro-batch tokens per GPU
    G = 2 ** 30
    print(f"{cfg.preset}: {P / 1e6:.1f}M parameters (embedding {n['embedding'] / 1e6:.1f}M, head {n['lm_head'] / 1e6:.1f}M, "
          f"rest {n['rest'] / 1e6:.1f}M), vocab {mcfg.vocab_size:,}; micro-batch {cfg.batch_size // world} x {T} per GPU, "
          f"{world} GPU(s), grad_accum {cfg.grad_accum}, bf16")
    print(f"{'GiB per GPU':<30}{'DDP':>10}{'DDP+ckpt':>10}{'FSDP':>10}{'FSDP+ckpt':>11}")
    rows = {"weights (fp32)": [4 * P, 4 * P, 4 * P / world, 4 * P / world],
            "gradients (fp32)": [4 * P, 4 * P, 4 * P / world, 4 * P / world],
            "AdamW moments (2 x fp32)": [8 * P, 8 * P, 8 * P / world, 8 * P / world],
            # FSDP gathers bf16 weights of the running block and the prefetched next one, plus the root
            # (embedding, head), and holds one block's fp32 gradients before its reduce-scatter
            "FSDP gathered weights/grads": [0, 0] + [2 * (2 * block + P - mcfg.n_layer * block) + 4 * block] * 2,
            "activations": [model.activation_bytes(micro, a) for a in (False, True, False, True)]}
    for name, row in rows.items():
        print(f"{name:<30}" + "".join(f"{b / G:>10.1f}" for b in row[:3]) + f"{row[3] / G:>11.1f}")
    total = [sum(r[i] for r in rows.values()) for i in range(4)]
    print(f"{'total':<30}" + "".join(f"{b / G:>10.1f}" for b in total[:3]) + f"{total[3] / G:>11.1f}")
    print(f"{'fits in ' + f'{capacity / 1e9:.0f} GB ' + gpu + '?':<30}" + "".join(
        f"{'yes' if b < 0.9 * capacity else 'no':>{w}}" for b, w in zip(total, (10, 10, 10, 11))) + "   (90% usable)")
    flops = model.flops_per_token(T)
    tok_s = cfg.mfu * GPU_PEAK_BF16[gpu] / flops
    print(f"FLOPs per token {flops / 1e9:.2f} G (training); at {cfg.mfu:.0%} MFU of the {gpu}'s "
          f"{GPU_PEAK_BF16[gpu] / 1e12:.0f} TFLOP/s: {tok_s:,.0f} tokens/s per GPU, "
          f"{tok_s * world * 86400 / 1e9:.2f}B tokens/day on {world}")
    return total


def make_optimizer(model, cfg, fused=False):
    """AdamW (PAPER.md §4: betas 0.9/0.95, eps 1e-8). Weight decay only on matrices (embeddings and
    projections): the RMSNorm gains are scales around 1, and decay would pull them towards 0."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, fused=fused)


def main(argv):
    cfg, model_overrides = parse_config(argv)
    check_config(cfg)

    if cfg.dry_run:                               # the plan needs only shapes: no processes, no data read
        world = int(os.environ.get("WORLD_SIZE", cfg.nproc))
        mcfg = model_config(cfg.preset, **model_overrides)
        if not mcfg.vocab_size:                   # the data's vocabulary if --data names some, else the preset's
            meta_path = os.path.join(cfg.data, "meta.json")
            own = cfg.data != TrainConfig.data or cfg.preset not in PRESET_N_VOCAB
            n_vocab = json.load(open(meta_path))["tokenizer"]["n_vocab"] if own and os.path.exists(meta_path) else \
                PRESET_N_VOCAB.get(cfg.preset, 16_001)
            mcfg.vocab_size = padded_vocab(n_vocab)
        return memory_plan(cfg, mcfg, world)

    # ---- processes and device --------------------------------------------------------------------
    dist = "RANK" in os.environ                                          # launched by torchrun
    rank, world = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if dist else (0, 1)
    fsdp = cfg.parallel == "fsdp"
    if fsdp and world < 2:
        raise ValueError("--parallel=fsdp shards the model over processes: launch with "
                         "`torchrun --nproc_per_node=N train.py ...` (N >= 2), or use --parallel=ddp")
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if dist:
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    master = rank == 0
    if cfg.batch_size % world:
        raise ValueError(f"--batch_size={cfg.batch_size} is not divisible by the {world} processes; use a multiple of {world}")
    cuda = device.startswith("cuda")
    # bf16 autocast on CUDA (fp32 on CPU); FSDP casts by its own MixedPrecisionPolicy instead
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and not fsdp else nullcontext()
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
        saved = ModelConfig(**ckpt["model_config"])
        mcfg = ModelConfig(**{**ckpt["model_config"], **model_overrides})
        changed = {k: v for k, v in model_overrides.items()       # use_kernels is how to run, not what the model is
                   if k != "use_kernels" and getattr(mcfg, k) != getattr(saved, k)}
        if changed:
            raise ValueError(f"{path} was trained with another model config (you changed {changed}); "
                             f"drop those options or start from scratch")
        if ckpt["tokenizer"]["sha256"] != meta["tokenizer"]["sha256"]:
            raise ValueError(f"{path} was trained with tokenizer {ckpt['tokenizer']['name']!r} but {cfg.data} was "
                             f"made with {meta['tokenizer']['name']!r}; re-run data/prepare.py --tokenizer="
                             f"{ckpt['tokenizer']['source']} or move the checkpoint to that tokenizer with inherit.py --tokenizer")
        if cfg.init_from == "resume" and ckpt.get("sharded") and (not fsdp or ckpt["world"] != world):
            raise ValueError(f"{path} is an FSDP checkpoint of {ckpt['world']} processes: resume it with --parallel=fsdp "
                             f"on {ckpt['world']} processes, or start a new run from its weights with --init_from={path}")
    else:
        mcfg = model_config(cfg.preset, **model_overrides)
        if not mcfg.vocab_size:                     # presets take the data's vocabulary, padded to 64 (model.py)
            mcfg.vocab_size = padded_vocab(meta["tokenizer"]["n_vocab"])
    if meta["tokenizer"]["n_vocab"] > mcfg.vocab_size:
        raise ValueError(f"{cfg.data} uses {meta['tokenizer']['n_vocab']} token ids but the model has vocab_size="
                         f"{mcfg.vocab_size}; compress the tokenizer (tokenizer_compress.py) and re-prepare, or pass --vocab_size")
    T = cfg.seq_len or mcfg.block_size
    if T > mcfg.block_size:
        raise ValueError(f"--seq_len={T} is longer than the model's context (block_size={mcfg.block_size}); lower it, "
                         f"or train a model with a longer context (--block_size, from scratch)")
    model = Transformer(mcfg).to(device)
    if ckpt is not None and "model" in ckpt:
        model.load_state_dict(ckpt["model"])
    model.act_ckpt = cfg.act_ckpt                 # recompute each block's activations in backward (model.trunk)
    train_data = Batches(os.path.join(cfg.data, "train.bin"), meta["dtype"], T, cfg.batch_size * cfg.grad_accum, cfg.seed)
    val_data = Batches(os.path.join(cfg.data, "val.bin"), meta["dtype"], T, world * max(1, min(cfg.batch_size, 8) // world), cfg.seed)
    tokens_per_byte = meta["splits"]["val"]["tokens"] / meta["splits"]["val"]["bytes"]
    raw_model = model
    if fsdp:     # FSDP2: each block's parameters, gradients and optimizer state live 1/world on each rank
        from torch.distributed.fsdp import fully_shard, MixedPrecisionPolicy
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if cuda else MixedPrecisionPolicy()
        for block in model.layers:                # gathered one block at a time in forward and backward
            fully_shard(block, mp_policy=mp)
        fully_shard(model, mp_policy=mp)          # the root: embedding, final norm, LM head
    if cfg.compile:
        model = torch.compile(model)
    if dist and not fsdp:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.device(device).index] if cuda else None,
                                                          gradient_as_bucket_view=True,   # no 2nd copy of the gradients
                                                          broadcast_buffers=False)        # RoPE tables: same on every rank

    optimizer = make_optimizer(raw_model, cfg, fused=cuda)
    batch_tokens = cfg.batch_size * cfg.grad_accum * T
    peak_lr = batch_lr(cfg, batch_tokens)

    # ---- where we are: round, step in the round, refined selection --------------------------------
    round_, step, best = 1, 0, float("inf")
    if cfg.init_from == "resume":
        if fsdp:                                  # every rank reads its shards of model and optimizer
            load_sharded(raw_model, optimizer, os.path.join(cfg.out_dir, ckpt["sharded"]))
        else:
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

    def check_finite(where):
        """Nothing non-finite may reach a checkpoint: the losses since the last check and every weight (this
        rank's shard under FSDP). All ranks agree, so all stop together instead of some waiting forever."""
        local = [p.to_local() if hasattr(p, "to_local") else p for p in raw_model.parameters()]
        flag = bad | ~torch.stack([torch.isfinite(p).all() for p in local]).all()
        if dist:
            torch.distributed.all_reduce(flag := flag.int(), torch.distributed.ReduceOp.MAX)
        if flag.item():
            raise FloatingPointError(f"loss or weights became NaN/inf before {where}; stopped without saving: the last "
                                     f"good checkpoint is {os.path.join(cfg.out_dir, 'ckpt.pt')} (lower --lr?)")

    def checkpoint(path, sharded=False):
        """DDP / one process: one file with everything. FSDP: the model consolidated into one file (what
        eval.py, inherit.py and export.py read) and, for resuming, every rank's shards of model and
        optimizer in a directory (torch.distributed.checkpoint) that ckpt.pt names."""
        check_finite(f"step {step} of round {round_}")
        state = {"model_config": asdict(mcfg), "train_config": asdict(cfg), "tokenizer": meta["tokenizer"],
                 "round": round_, "step": step, "best_val_loss": best, "world": world,
                 "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}}
        if fsdp and sharded:
            state["sharded"] = save_sharded(raw_model, optimizer, cfg.out_dir, round_, step, master)
        full = full_state_dict(raw_model, fsdp)                          # collective under FSDP
        if master:
            state.update(model=full, **({} if fsdp else {"optimizer": optimizer.state_dict()}))
            save_checkpoint(state, path)
            if fsdp and sharded:                                         # ckpt.pt names the new shards: drop the old
                for d in os.listdir(cfg.out_dir):
                    if d.endswith(".dcp") and d != state["sharded"]:
                        shutil.rmtree(os.path.join(cfg.out_dir, d), ignore_errors=True)

    @torch.no_grad()
    def evaluate():
        """Mean val loss over eval_iters fixed batches and bits-per-byte. Every rank scores its part of every
        batch (the same number of forward passes on each rank, as FSDP's collectives require)."""
        model.eval()
        n = min(cfg.eval_iters, val_data.n)
        total = torch.zeros((), device=device)
        for i in range(n):
            x, y = (t.to(device) for t in val_data.rows(i * val_data.n // n, rank, world))
            with autocast:
                total += model(x, y)[1]
        if dist:
            torch.distributed.all_reduce(total)
        model.train()
        loss = total.item() / (n * world)
        return loss, loss / math.log(2) * tokens_per_byte          # nats/token -> bits/byte

    n_params = raw_model.param_count()
    if master:
        print(f"model {cfg.preset if cfg.init_from == 'scratch' else cfg.init_from}: {n_params['total'] / 1e6:.2f}M parameters "
              f"(embedding {n_params['embedding'] / 1e6:.2f}M, lm head {n_params['lm_head'] / 1e6:.2f}M, rest {n_params['rest'] / 1e6:.2f}M)")
        print(f"data {cfg.data}: {train_data.n} batches of {cfg.batch_size * cfg.grad_accum}x{T} tokens; {batch_tokens:,} tokens per step; "
              f"device {device}, {world} process(es)")
        print(f"peak lr {peak_lr:.3g}" + (f" = {cfg.lr:g} x ({batch_tokens} / {cfg.base_batch_tokens})^{cfg.lr_scaling_r} (paper §5 rule)"
                                          if peak_lr != cfg.lr else ""))
        if batch_tokens > 4 * 2 ** 20:
            print(f"warning: {batch_tokens:,} tokens per step is above the ~4M tokens the paper finds tiny models tolerate (§5)")

    peak_flops = device_peak_flops(device)       # datasheet peak; None on CPU (MFU then is not shown)
    flops_per_step = raw_model.flops_per_token(T) * batch_tokens / world
    round_iters = lambda r: cfg.max_iters if r == 1 else (cfg.refine_iters or cfg.max_iters)
    bad = torch.zeros((), dtype=torch.bool, device=device)                # any non-finite loss since last check
    from tqdm import tqdm
    for round_ in range(round_, cfg.rounds + 1):
        iters, done_before = round_iters(round_), sum(round_iters(r) for r in range(1, round_))
        if step >= iters:              # resumed at the very end of this round: go on with the next one
            if not os.path.exists(os.path.join(cfg.out_dir, f"round{round_}.pt")):
                checkpoint(os.path.join(cfg.out_dir, f"round{round_}.pt"))
            step = 0
            continue
        ids = np.arange(train_data.n) if round_ == 1 else refined_batches(cfg, raw_model, train_data, round_, autocast, device, rank, world)
        loss_acc, last_log = torch.zeros((), device=device), step          # train loss summed since step last_log
        t0, bar = time.time(), tqdm(total=iters, initial=step, desc=f"round {round_}", disable=not master, dynamic_ncols=True)
        while step < iters:
            lr = lr_at(step, iters, peak_lr, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = train_data.order(ids, round_, step)
            for micro in range(cfg.grad_accum):       # this rank's part of the step's batch, a micro-batch at a time
                x, y = train_data.rows(batch, micro * world + rank, cfg.grad_accum * world)
                if cuda:
                    x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
                sync = micro == cfg.grad_accum - 1          # reduce gradients over ranks once per step
                if fsdp:
                    model.set_requires_gradient_sync(sync)
                with (model.no_sync() if dist and not fsdp and not sync else nullcontext()), autocast:
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
                check_finite(f"step {step} of round {round_}")
                if dist:                                                   # log the mean over all ranks
                    torch.distributed.all_reduce(loss_acc)
                    loss_acc /= world
                n, dt, t0 = step - last_log, time.time() - t0, time.time()
                train_loss, last_log = loss_acc.item() / n, step
                loss_acc.zero_()
                tok_s = n * batch_tokens / dt
                mfu = n * flops_per_step / dt / peak_flops if peak_flops else None
                bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{tok_s:,.0f}", **({"mfu": f"{mfu:.1%}"} if mfu else {}))
                log(round=round_, step=step, loss=train_loss, lr=lr, tok_per_s=tok_s, mfu=mfu)
            halt = done_before + step == cfg.halt_at                       # halt_at counts steps over all rounds
            if step % cfg.eval_interval == 0 or step == iters or halt:
                val_loss, val_bpb = evaluate()
                best = min(best, val_loss)
                bar.write(f"round {round_} step {step}: val loss {val_loss:.4f}, val bits-per-byte {val_bpb:.4f}")
                log(round=round_, step=step, val_loss=val_loss, val_bpb=val_bpb)
                checkpoint(os.path.join(cfg.out_dir, "ckpt.pt"), sharded=True)
            if halt:
                bar.close()
                if master:
                    print(f"halted at step {step} (--halt_at); continue with --init_from=resume")
                return finish(dist)
        bar.close()
        checkpoint(os.path.join(cfg.out_dir, f"round{round_}.pt"))
        step = 0

    val_loss, val_bpb = evaluate()
    sampler = raw_model
    if fsdp and cfg.sample_tokens:               # rank 0 samples alone: from a consolidated copy of the weights
        full = full_state_dict(raw_model, fsdp)
        if master:
            sampler = Transformer(mcfg).to(device)
            sampler.load_state_dict(full)
    if master and cfg.sample_tokens:
        from tokenizer_compress import load_tokenizer, decode_sample
        enc = load_tokenizer(meta["tokenizer"]["source"])
        prompt = enc.encode_ordinary(cfg.sample_prompt) if cfg.sample_prompt else [meta["eot_token"]]
        n_new = min(cfg.sample_tokens, mcfg.block_size - len(prompt))
        out = sampler.generate(torch.tensor([prompt], device=device), n_new, temperature=0.8, top_k=200,
                                 generator=torch.Generator(device).manual_seed(cfg.seed), n_vocab=enc.n_vocab)
        print("-" * 80 + "\n" + decode_sample(enc, out[0].tolist()) + "\n" + "-" * 80)
    if master:
        print(f"final val loss {val_loss:.4f}, val bits-per-byte {val_bpb:.4f} (checkpoint {os.path.join(cfg.out_dir, 'ckpt.pt')})")
    finish(dist)


def finish(dist):
    """Leave the process group together: rank 0 may still be sampling or writing while the others are done,
    and a rank that tears down its connections early aborts the others (gloo: SIGABRT)."""
    if dist:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


@torch.no_grad()
def refined_batches(cfg, model, data, round_, autocast, device, rank, world):
    """The batch ids round `round_` trains on: score every batch with the (frozen) model from the end of the
    previous round — losses saved to out_dir/round{r}_batch_losses.npy as they come, so an interrupted
    scoring pass resumes — then select (select_batches) and save the ids and a summary. A batch is scored
    as it is trained: in grad_accum x world micro-batches, rank r taking every world-th one, so no device
    holds more than a training micro-batch (and the model's loss never materialises (B, T, V) logits)."""
    from tqdm import tqdm
    sel_path = os.path.join(cfg.out_dir, f"round{round_}_selection.npy")
    if os.path.exists(sel_path):
        return np.load(sel_path)
    loss_path = os.path.join(cfg.out_dir, f"round{round_}_batch_losses.npy")
    losses = np.load(loss_path) if os.path.exists(loss_path) else np.full(data.n, np.nan)
    todo = np.flatnonzero(np.isnan(losses))
    model.eval()
    chunk, parts = 64, cfg.grad_accum * world
    for start in tqdm(range(0, len(todo), chunk), desc=f"scoring {data.n} batches for round {round_}",
                      disable=rank != 0, dynamic_ncols=True):
        sums = torch.zeros(len(todo[start:start + chunk]), dtype=torch.float64, device=device)
        for j in range(len(sums)):
            for part in range(rank, parts, world):                  # this rank's micro-batches of batch j
                x, y = (t.to(device) for t in data.rows(todo[start + j], part, parts))
                with autocast:
                    sums[j] += model(x, y)[1].double() * y.numel()   # mean -> sum of token losses
        if world > 1:
            torch.distributed.all_reduce(sums)
        losses[todo[start:start + chunk]] = (sums / (data.B * data.T)).cpu().numpy()
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
