"""bench/gpu_check.py: the GPU check's --dry mode (every step at toy size on CPU) writes the table and
the raw logs the GPU run will, so the one GPU run cannot fail on plumbing; and bad options fail at once."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One --dry run for the module: (exit code, stdout, output folder). Minutes on a shared 2-core box: the
    GPU run's --budget (420 s) would skip the last steps there, so a test has none (an hour)."""
    out = tmp_path_factory.mktemp("gpu_check")
    done = subprocess.run([sys.executable, "bench/gpu_check.py", "--dry", f"--out={out}", "--budget=3600"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return done.returncode, done.stdout + done.stderr, out


@pytest.mark.slow
def test_dry_run_fills_every_row_of_the_table(dry_run):
    code, output, out = dry_run
    assert code == 0, output[-3000:]
    rows = json.load(open(out / "results.json"))["rows"]
    assert not [r for r in rows if r["result"] in ("FAIL", "SKIP")], rows
    measures = [r["measure"] for r in rows]
    for expected in ("correctness vs fp32 reference, fwd + every grad", "RMSNorm+residual fwd, 8x96",
                     "RMSNorm+residual bwd, 8x128", "attention bwd, B=1 H=2 T=64 D=16",
                     "train loss, kernels on vs off, 3 steps", "peak memory, 1b act_ckpt"):
        assert expected in measures
    for label in ("kernels off", "kernels on", "kernels on, --act_ckpt", "kernels on, --compile=true"):
        assert f"pangu-1b-pro, {label} (dry: tiny)" in measures
    assert sum(r["step"] == "profile" for r in rows) == 5
    assert all(r["result"] in ("dry", "info") for r in rows)  # no CPU figure is judged
    kernels = next(r for r in rows if r["step"] == "kernels")["value"]
    assert kernels.startswith(("1 ", "2 ", "3 ", "4 ", "5 ")) and "0 failed" in kernels  # tests did run
    tiny = next(r for r in rows if r["step"] == "tiny")["value"]
    assert tiny.startswith("max rel. diff 0.00%")  # on CPU both runs take the PyTorch path: identical


@pytest.mark.slow
def test_dry_run_prints_one_table_and_saves_it_with_the_logs(dry_run):
    code, output, out = dry_run
    table = (out / "table.md").read_text()
    assert table.strip() in output  # the printed table is the saved one
    assert table.count("| step | measure | measured | target | result |") == 1
    heading = table.splitlines()[0]
    for field in ("date", "torch", "triton", "CUDA", "device"):
        assert field in heading
    logs = set(os.listdir(out / "logs"))
    assert {"kernels.txt", "kernels.xml", "tiny_on.txt", "tiny_off.txt", "1b_on.txt", "1b_compile.txt",
            "plan.txt", "profile.txt", "speed_rmsnorm_96.json", "speed_attention_64.json"} <= logs
    assert "peak_memory_bytes" in (out / "logs" / "1b_on.txt").read_text()  # the runner's exit report
    run = out / "runs" / "1b_on"
    assert (run / "log.jsonl").exists() and not (run / "ckpt.pt").exists()  # checkpoints are off


def _main(argv):
    """gpu_check.main(argv) in this process: (exit code, stderr)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(ROOT, "bench", "gpu_check.py"))
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(argv)
    return exit_.value.code


@pytest.mark.parametrize("argv, message", [
    (["--dry", "--steps=kernels,bogus"], "--steps takes names from"),
    (["--dry", "--budget=0"], "--budget must be > 0"),
    ([], "no CUDA GPU here; --dry checks the script on CPU"),
])
def test_bad_options_fail_in_one_line_before_any_work(tmp_path, capsys, argv, message):
    if not argv and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert _main([f"--out={tmp_path}", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("gpu_check.py: error:") and err.count("\n") == 1
    assert not os.listdir(tmp_path)  # nothing written
