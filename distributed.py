"""distributed.py — the scale and run-keeping machinery of train.py: several processes, sharded
models, sharded checkpoints, the --dry_run memory plan, RNG states, run folders and checks of a
checkpoint to continue from. A first reading can skip this file: nothing of the paper is here,
and on one process every call below is a no-op or a plain PyTorch call. train.py calls it in a
handful of named places, as nanochat's base_train calls `compute_init` and its checkpoint manager:

    rank, world, device = compute_init(device, parallel)    # join torchrun's process group
    model = wrap(model, parallel, device, compile)          # DDP (full copies) or FSDP2 (shards)
    with grad_sync(model, on): loss.backward()              # reduce gradients: last micro-step
    all_finite(model, bad), sum_over_ranks(t)               # decisions every rank takes together
    save(...), load_optimizer(...), full_state_dict(model)  # checkpoints, sharded under FSDP
    rng_state(), set_rng_state(rng), check_checkpoint(...)  # exact resume
    keep_runs_apart(out_dir, resumed_at), finish(), memory_plan(...)

Trust boundary of sharded (FSDP) checkpoints. torch.distributed.checkpoint reads a shard
directory's `.metadata` with a bare `pickle.load` (torch/distributed/checkpoint/filesystem.py,
FileSystemReader.read_metadata) and every non-tensor item (e.g. the optimizer's hyper-parameters)
with `torch.load(weights_only=False)` (default_planner.py, DefaultLoadPlanner.load_bytes): either
would run code that a stranger put in the files. `load_optimizer` replaces both: a restricted
unpickler that builds only DCP's own metadata records (torch 2.13), and weights-only loading of the
byte items. Tensor shards were already read with weights_only=True. Only `--init_from=resume` reads
shards, from this run's own out_dir.
"""
import json
import os
import pickle
import random
import re
import shutil
import time
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
import torch.distributed as dist

from data.batches import load_meta
from model import GPU_PEAK_BF16, PRESET_N_VOCAB, Transformer, fsync_dir, model_config, padded_vocab
from model import resolve_device, save_checkpoint


def compute_init(device, parallel):
    """(rank, world, device). device: auto (cuda, else mps, else cpu) | cpu | mps | cuda | cuda:N.
    Under torchrun (which sets RANK, WORLD_SIZE, LOCAL_RANK) join the process group: NCCL between
    GPUs, gloo between CPU processes; rank r drives the GPU cuda:LOCAL_RANK."""
    device = resolve_device(device)                 # a one-line error if this machine lacks it
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if "RANK" in os.environ:
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if parallel == "fsdp" and world < 2:
        raise ValueError("--parallel=fsdp shards the model over processes: launch with `torchrun "
                         "--nproc_per_node=N train.py ...` (N >= 2), or use --parallel=ddp")
    return rank, world, device


def wrap(model, parallel, device, compile=False):
    """The module the training step calls. FSDP2 (fully_shard): each block's parameters, gradients
    and AdamW state live 1/world on each rank and are gathered one block at a time; weights in
    bf16 on CUDA, gradients reduced in fp32. DDP: every rank holds a full copy and gradients are
    all-reduced in buckets."""
    cuda = device.startswith("cuda")
    if parallel == "fsdp" and dist.is_initialized():
        from torch.distributed.fsdp import fully_shard, MixedPrecisionPolicy
        # CUDA: bf16 weights, fp32 gradient reduction; CPU: fp32 throughout
        policy = MixedPrecisionPolicy(torch.bfloat16, torch.float32) if cuda else MixedPrecisionPolicy()
        for block in model.layers:
            fully_shard(block, mp_policy=policy)
        fully_shard(model, mp_policy=policy)              # the root: embedding, final norm, LM head
    if compile:
        model = torch.compile(model)
    if parallel == "ddp" and dist.is_initialized():
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.device(device).index] if cuda else None,
            gradient_as_bucket_view=True,                 # gradients live in the buckets: no copy
            broadcast_buffers=False)                      # RoPE tables are the same on every rank
    return model


@contextmanager
def grad_sync(model, on):
    """Reduce gradients over ranks in this backward only if `on` (a step's last micro-step): the
    earlier micro-steps accumulate locally, which saves grad_accum - 1 all-reduces per step.
    No-op on one process."""
    if hasattr(model, "set_requires_gradient_sync"):    # an FSDP2 module
        model.set_requires_gradient_sync(on)
    skip = isinstance(model, torch.nn.parallel.DistributedDataParallel) and not on
    with model.no_sync() if skip else nullcontext():     # DDP: no all-reduce in this backward
        yield


def sum_over_ranks(tensor):
    """`tensor` summed over all ranks, in place (a collective: every rank must call it)."""
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def all_finite(model, bad):
    """False if any rank saw a non-finite loss (`bad`, a bool tensor) or holds a non-finite weight
    (its own shard under FSDP). All ranks agree, so all stop together: none waits forever."""
    local = [p.to_local() if hasattr(p, "to_local") else p for p in model.parameters()]
    flag = (bad | ~torch.stack([torch.isfinite(p).all() for p in local]).all()).int()
    return sum_over_ranks(flag).item() == 0


def full_state_dict(model):
    """The whole model's weights (on CPU under FSDP, where it gathers every shard: a collective)."""
    if not any(hasattr(p, "to_local") for p in model.parameters()):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, StateDictOptions
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def save(state, path, model, optimizer, sharded, rank):
    """Write checkpoint `path` = `state` + the weights (+ optimizer). One process / DDP: one file
    with everything. FSDP with `sharded`: also every rank's shards of model and optimizer in a
    directory (torch.distributed.checkpoint) that the file names; the file still holds the
    consolidated model, which eval.py, inherit.py and export.py read. Shards are written under a
    temporary name and renamed when every rank is done (then the directory is fsynced), so a
    crash never leaves a name that does not load."""
    out_dir = os.path.dirname(path) or "."
    fsdp = any(hasattr(p, "to_local") for p in model.parameters())   # DTensor shards: FSDP2
    if fsdp and sharded:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict
        state["sharded"] = f"ckpt-r{state['round']}-s{state['step']}.dcp"
        model_sd, optim_sd = get_state_dict(model, optimizer)
        tmp = os.path.join(out_dir, state["sharded"] + ".tmp")
        dcp.save({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=tmp)
        dist.barrier()                                      # every rank has written its part
        if rank == 0:
            shutil.rmtree(os.path.join(out_dir, state["sharded"]), ignore_errors=True)
            os.replace(tmp, os.path.join(out_dir, state["sharded"]))
            fsync_dir(out_dir)
    weights = full_state_dict(model)                                  # a collective under FSDP
    if rank == 0:
        optimizer_state = {} if fsdp else {"optimizer": optimizer.state_dict()}   # FSDP: in shards
        save_checkpoint({**state, "model": weights, **optimizer_state}, path)
        for name in os.listdir(out_dir) if fsdp and sharded else ():  # the file names new shards
            if name.endswith(".dcp") and name != state["sharded"]:
                shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)


class _MetadataUnpickler(pickle.Unpickler):
    """Builds only what a DCP .metadata pickle holds (seen in one torch 2.13 wrote): DCP's records,
    torch.Size / dtypes, pathlib paths, a layout lookup by name; nothing else (no os.system...)."""
    ALLOWED = {("torch", "Size"), ("torch.serialization", "_get_layout"), ("pathlib", "Path"),
               ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"), ("pathlib", "PurePosixPath"),
               ("torch.distributed.checkpoint.filesystem", "_StorageInfo")}

    def find_class(self, module, name):
        ok = (module, name) in self.ALLOWED or module == "torch.distributed.checkpoint.metadata" \
            or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype))
        if not ok:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a sharded checkpoint's metadata")
        return super().find_class(module, name)


def load_optimizer(model, optimizer, ckpt, out_dir):
    """Resume the optimizer (and, under FSDP, each rank's shards of the model) from checkpoint
    `ckpt`, without running code from the files (see the module docstring)."""
    if "sharded" not in ckpt:
        return optimizer.load_state_dict(ckpt["optimizer"])
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner, set_element
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    class Reader(dcp.FileSystemReader):
        def read_metadata(self, *args, **kwargs):
            with open(os.path.join(self.path, ".metadata"), "rb") as f:
                metadata = _MetadataUnpickler(f).load()
            metadata.storage_meta = metadata.storage_meta or dcp.metadata.StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    class Planner(DefaultLoadPlanner):
        def load_bytes(self, read_item, value):   # the parent's, with weights_only=True
            obj = torch.load(value, weights_only=True)    # flatten_state_dict: on by default
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], obj)

    path = os.path.join(out_dir, os.path.basename(ckpt["sharded"]))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} (the shards ckpt.pt names) is missing; start again from "
                                f"its weights with --init_from={os.path.join(out_dir, 'ckpt.pt')}")
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optimizer": optim_sd}   # dcp.load fills these in place
    try:
        dcp.load(state, storage_reader=Reader(path), planner=Planner())
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: {e}; refusing to load it") from None
    set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd)


def rng_state():
    """Every RNG the run draws from, as tensors and plain lists (a weights-only load takes them)."""
    numpy_rng, (version, python_rng, gauss) = np.random.get_state(), random.getstate()
    return {"torch": torch.get_rng_state(), "python": [version, list(python_rng), gauss],
            "numpy": [numpy_rng[0], numpy_rng[1].tolist(), *numpy_rng[2:]]}


def set_rng_state(rng):
    torch.set_rng_state(rng["torch"])
    np.random.set_state(tuple(rng["numpy"]))
    version, python_rng, gauss = rng["python"]
    random.setstate((version, tuple(python_rng), gauss))


def check_checkpoint(ckpt, path, model_overrides, meta, cfg, world):
    """One-line errors when checkpoint `path` cannot continue on these options, data, processes."""
    changed = [f"--{k}={v}" for k, v in model_overrides.items()   # use_kernels: runtime, not model
               if k != "use_kernels" and ckpt["model_config"].get(k) != v]
    if changed:
        raise ValueError(f"{path} was trained with another model config: drop {' '.join(changed)}")
    if ckpt.get("tokenizer", {}).get("sha256") != meta["tokenizer"]["sha256"]:
        trained_with, made_with = ckpt.get("tokenizer", {}).get("name"), meta["tokenizer"]["name"]
        what = (f"another version of tokenizer {made_with!r} (same name, other tokens: was its file rewritten?)"
                if trained_with == made_with else f"tokenizer {made_with!r}, not {trained_with!r}")
        raise ValueError(f"{cfg.data} was made with {what}, which {path} was not trained on; point --data "
                         f"at shards of the checkpoint's tokenizer, or convert it with inherit.py --tokenizer")
    same_layout = cfg.parallel == "fsdp" and ckpt.get("world") == world
    if cfg.init_from == "resume" and ckpt.get("sharded") and not same_layout:
        raise ValueError(f"{path} is an FSDP checkpoint of {ckpt['world']} processes: resume it with "
                         f"--parallel=fsdp on {ckpt['world']} processes, or start anew with --init_from={path}")


# The files a run writes into its out_dir (train.py; shards: save above)
RUN_FILES = re.compile(r"ckpt\.pt|log\.jsonl(\.orphaned)?|curves\.png|ckpt-r\d+-s\d+\.dcp(\.tmp)?|"
                       r"round\d+(\.pt|_selection\.(npy|json)|_batch_losses\.npy)")


def keep_runs_apart(out_dir, resumed_at=None):
    """No run overwrites another. A fresh run (resumed_at None) into an out_dir holding a previous
    run moves that run's files into out_dir/old-<time>-<pid>/. A resume from the checkpoint at
    (round, step) `resumed_at` moves the log rows past it (written by a run that died after it)
    to log.jsonl.orphaned, so the steps trained again are not logged twice."""
    os.makedirs(out_dir, exist_ok=True)
    old = [f for f in os.listdir(out_dir) if RUN_FILES.fullmatch(f)]
    if resumed_at is None and old:
        aside = os.path.join(out_dir, time.strftime("old-%Y%m%d-%H%M%S") + f"-{os.getpid()}")
        os.makedirs(aside)
        for f in old:
            os.replace(os.path.join(out_dir, f), os.path.join(aside, f))
        print(f"{out_dir} held a previous run: moved its files ({len(old)}) to {aside}")
    path = os.path.join(out_dir, "log.jsonl")
    if resumed_at is None or not os.path.exists(path):
        return
    lines = open(path).readlines()
    rows = [json.loads(line) if line.endswith("}\n") else None for line in lines]   # whole rows
    keep = [row is not None and (row["round"], row["step"]) <= resumed_at for row in rows]
    if not all(keep):
        with open(path + ".orphaned", "a") as orphaned, open(path + ".tmp", "w") as kept:
            for line, k in zip(lines, keep):
                (kept if k else orphaned).write(line)
        os.replace(path + ".tmp", path)


def finish():
    """Leave the process group together: rank 0 may still be sampling or writing while the others
    are done, and a rank that tears down its connections early aborts the others (gloo: SIGABRT)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def memory_plan(cfg, model_overrides, world):
    """--dry_run: print parameters, GiB per GPU (weights, gradients, AdamW moments, activations)
    with and without FSDP and activation checkpointing, FLOPs per token and the tokens/s an MFU
    implies. Everything comes from shapes on the meta device: nothing is allocated. Returns the
    four totals in bytes. The vocabulary is --data's if it names shards, else the preset's."""
    config = model_config(cfg.preset, **model_overrides)
    named = cfg.data != type(cfg).data or cfg.preset not in PRESET_N_VOCAB   # not the default
    n_vocab = load_meta(cfg.data)["tokenizer"]["n_vocab"] if named and os.path.isdir(cfg.data) \
        else PRESET_N_VOCAB.get(cfg.preset, 16_001)
    config.vocab_size = config.vocab_size or padded_vocab(n_vocab)
    gpu, _, gb = cfg.gpu.partition(":")
    if gpu not in GPU_PEAK_BF16 or not (gb or "80").replace(".", "", 1).isdigit():
        raise ValueError(f"--gpu={cfg.gpu!r}: write NAME or NAME:GB with NAME one of {', '.join(GPU_PEAK_BF16)}")
    micro_rows = cfg.batch_size // world                   # sequences per GPU per micro-step
    if micro_rows < 1:
        raise ValueError(f"--batch_size={cfg.batch_size} over {world} GPUs is a micro-batch of 0 "
                         f"sequences; use --batch_size >= {world} (a multiple of {world})")
    capacity, T = float(gb or 80) * 1e9, cfg.seq_len or config.block_size
    with torch.device("meta"):
        model = Transformer(config)
    n = model.param_count()
    P, block = n["total"], sum(p.numel() for p in model.layers[0].parameters())
    print(f"{cfg.preset}: {P / 1e6:.1f}M parameters (embedding {n['embedding'] / 1e6:.1f}M, head "
          f"{n['lm_head'] / 1e6:.1f}M, rest {n['rest'] / 1e6:.1f}M), vocab {config.vocab_size:,}; micro-batch "
          f"{micro_rows} x {T} per GPU, {world} GPU(s), grad_accum {cfg.grad_accum}, bf16")
    # bytes per parameter: 4 (fp32 weight) + 4 (fp32 gradient) + 8 (AdamW's two fp32 moments) = 16;
    # FSDP keeps 1/world of each, but gathers the bf16 weights of the running block and the
    # prefetched next one, plus the root (embedding, head), and holds one block's fp32 gradients
    # before its reduce-scatter.
    gathered = 2 * (2 * block + P - config.n_layer * block) + 4 * block
    rows = {name: [size * P, size * P, size * P / world, size * P / world] for name, size in
            (("weights (fp32)", 4), ("gradients (fp32)", 4), ("AdamW moments (2 x fp32)", 8))}
    rows |= {"FSDP gathered weights/grads": [0, 0, gathered, gathered],
             "activations": [model.activation_bytes(micro_rows * T, act_ckpt)
                             for act_ckpt in (False, True, False, True)]}   # the columns' act_ckpt
    rows["total"] = [sum(r[i] for r in rows.values()) for i in range(4)]
    widths = (10, 10, 10, 11)                               # of the four columns
    print(f"{'GiB per GPU':<30}{'DDP':>10}{'DDP+ckpt':>10}{'FSDP':>10}{'FSDP+ckpt':>11}")
    for name, row in rows.items():
        print(f"{name:<30}" + "".join(f"{b / 2 ** 30:>{w}.1f}" for b, w in zip(row, widths)))
    fits = "".join(f"{'yes' if b < 0.9 * capacity else 'no':>{w}}"   # 10% kept for the allocator
                   for b, w in zip(rows["total"], widths))
    print(f"{'fits in ' + f'{capacity / 1e9:.0f} GB ' + gpu + '?':<30}" + fits + "  (90%)")
    flops = model.flops_per_token(T)
    tok_s = cfg.mfu * GPU_PEAK_BF16[gpu] / flops
    print(f"FLOPs per token {flops / 1e9:.2f} G (training); at {cfg.mfu:.0%} MFU of the {gpu}'s "
          f"{GPU_PEAK_BF16[gpu] / 1e12:.0f} TFLOP/s: {tok_s:,.0f} tokens/s per GPU, "
          f"{tok_s * world * 86400 / 1e9:.2f}B tokens/day on {world}")
    return rows["total"]
