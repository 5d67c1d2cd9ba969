"""bench/prepare_bench.py — throughput and peak memory of data/prepare.py at growing corpus sizes.

    python bench/prepare_bench.py                    # the 42 MB children's corpus at x1 and x4
    python bench/prepare_bench.py --copies=1,2,4 --tokenizer=data/tokenizers/mine.json

Each size runs `python data/prepare.py` as a child process on `copies` concatenated copies of
--input (gzip members concatenate into a valid .gz file, so building the x4 corpus costs a file
copy) and reads that child's own peak resident memory from os.wait4. Streaming prepare should show
the same peak RSS at every size: memory is bounded by a chunk of documents, not by the corpus.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPORA = os.path.join(os.path.dirname(ROOT), "shared", "data", "corpora")


def run_prepare(args, out_dir):
    """(wall seconds, peak RSS in MB) of one data/prepare.py child process."""
    t0 = time.time()
    cmd = [sys.executable, os.path.join(ROOT, "data", "prepare.py"), *args, f"--out_dir={out_dir}",
           "--overwrite"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "TQDM_DISABLE": "1"})   # no progress bars
    out = child.stdout.read()
    # wait4, not wait: it returns the child's own rusage; ru_maxrss is its peak RSS in KiB on Linux
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"prepare_bench.py: error: data/prepare.py failed:\n{out}")
    return time.time() - t0, usage.ru_maxrss / 1024


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", default=os.path.join(CORPORA, "gutenberg_children_train.txt.gz"),
                   help="corpus (.txt or .txt.gz) to copy")
    p.add_argument("--val_input", default=os.path.join(CORPORA, "gutenberg_children_val.txt.gz"),
                   help="held-out file (not copied)")
    p.add_argument("--copies", default="1,4", help="corpus sizes to run, as multiples of --input")
    p.add_argument("--tokenizer", default="cl100k_base", help="as data/prepare.py")
    args = p.parse_args(argv)
    for path in (args.input, args.val_input):
        if not os.path.exists(path):
            sys.exit(f"prepare_bench.py: error: {path} not found (defaults: ../shared/data/corpora)")
    # the copies keep --input's compression: prepare.py reads .txt and .txt.gz alike
    ext = ".txt.gz" if args.input.endswith(".gz") else ".txt"
    print(f"data/prepare.py on {os.path.basename(args.input)} (x copies) + "
          f"{os.path.basename(args.val_input)}, tokenizer {args.tokenizer}, {os.cpu_count()} CPUs")
    print(f"{'copies':>6}{'text MB':>9}{'tokens':>14}{'seconds':>9}{'MB/s':>7}{'peak RSS MB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(c) for c in args.copies.split(",")):
            # x n: the file's bytes n times over (for .gz, n gzip members: one valid .gz)
            corpus = os.path.join(tmp, f"corpus_x{n}{ext}")
            with open(corpus, "wb") as out:
                for _ in range(n):
                    with open(args.input, "rb") as f:
                        shutil.copyfileobj(f, out)
            out_dir = os.path.join(tmp, f"shards_x{n}")
            seconds, rss = run_prepare([f"--input={corpus}", f"--val_input={args.val_input}",
                                        f"--tokenizer={args.tokenizer}"], out_dir)
            with open(os.path.join(out_dir, "meta.json")) as f:
                splits = json.load(f)["splits"]      # each split's bytes and tokens
            mb = (splits["train"]["bytes"] + splits["val"]["bytes"]) / 1e6
            tokens = splits["train"]["tokens"] + splits["val"]["tokens"]
            row = f"{n:>6}{mb:>9.1f}{tokens:>14,}{seconds:>9.1f}{mb / seconds:>7.2f}{rss:>13.0f}"
            print(row, flush=True)                   # MB/s: text megabytes per wall second
            os.remove(corpus)                        # one size at a time on disk
            shutil.rmtree(out_dir)


if __name__ == "__main__":
    main()
