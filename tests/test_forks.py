"""forks.py: a script forked from the preloaded server runs as `python SCRIPT ARGS` would (what it sees, what
its caller gets back); reproduce.py's use of it: tests/test_reproduce.py (sh), tests/test_readme.py."""
import os
import subprocess
import sys

import pytest

from forks import Forks


@pytest.mark.parametrize("platform", ["linux", "darwin"])      # darwin: no fork server, a new process each
def test_a_forked_script_runs_as_the_interpreter_would_run_it(tmp_path, platform, monkeypatch):
    """What a script sees (__main__, argv, sys.path[0], cwd, a fresh namespace) and what its caller gets back
    (exit code, stdout, stderr, atexit handlers run, buffers flushed), forked or not."""
    (tmp_path / "work").mkdir()
    script = tmp_path / "work" / "s.py"
    script.write_text("import atexit, os, sys\nprint(__name__, sys.argv, sys.path[0], os.getcwd(), 'torch' in globals())\n"
                      "print('to stderr', file=sys.stderr)\nif sys.argv[1:] == ['boom']: 1 / 0\n"
                      "atexit.register(print, 'atexit ran')\nprint('unflushed', end='')\n"
                      "if sys.argv[1:] == ['msg']: sys.exit('failed: a message')\n"
                      "sys.exit(int(sys.argv[1]) if sys.argv[1:] else None)\n")
    env = {**os.environ, "PYTHONPATH": ""}
    monkeypatch.setattr(sys, "platform", platform)
    forks = Forks(tmp_path / "work", env=env, preload=("json",))
    assert bool(forks.server) == (platform == "linux")
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    try:
        for args in ([], ["3"], ["msg"], ["boom"]):    # exit 0, an exit code, a message (exit 1), an exception
            out.write_text(""), err.write_text("")
            real = subprocess.run([sys.executable, "s.py", *args], cwd=tmp_path / "work", env=env, capture_output=True,
                                  text=True)
            code = forks(["s.py", *args], out, err)
            assert (code, out.read_text()) == (real.returncode, real.stdout)
            assert err.read_text().splitlines()[-1] == real.stderr.splitlines()[-1]
        assert code == 1 and "ZeroDivisionError" in err.read_text()
    finally:
        forks.close()


def test_ctrl_c_stops_the_script_and_leaves_the_server_quiet(tmp_path):
    """Ctrl-C reaches every process of the terminal's group: the script gets KeyboardInterrupt (exit 1, as its
    caller expects), the server ignores it (no traceback of its own) and runs the next script."""
    import signal
    import threading
    import time
    (tmp_path / "slow.py").write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    (tmp_path / "ok.py").write_text("print('next')\n")
    forks, out = Forks(tmp_path, preload=()), tmp_path / "out.txt"
    try:
        result = []
        caller = threading.Thread(target=lambda: result.append(forks(["slow.py"], out)))
        caller.start()
        while "started" not in (out.read_text() if out.exists() else ""):
            time.sleep(0.05)
        server = forks.server.pid
        child = int(open(f"/proc/{server}/task/{server}/children").read().split()[0])
        for pid in (server, child):                    # what the terminal's Ctrl-C sends them (not pytest)
            os.kill(pid, signal.SIGINT)
        caller.join(10)
        assert result == [1] and "KeyboardInterrupt" in out.read_text()
        assert forks.server.poll() is None and forks(["ok.py"], out) == 0 and out.read_text().endswith("next\n")
    finally:
        forks.close()


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_a_script_runs_on_the_threads_its_caller_gives_it(tmp_path, platform, monkeypatch):
    """reproduce.py --jobs=2 gives each run half the cores (two runs side by side never oversubscribe them);
    without `threads`, torch's default."""
    (tmp_path / "t.py").write_text("import torch\nprint(torch.get_num_threads())\n")
    monkeypatch.setattr(sys, "platform", platform)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    default = subprocess.run([sys.executable, "t.py"], cwd=tmp_path, env=env, capture_output=True, text=True).stdout
    forks, out = Forks(tmp_path, env=env, preload=("torch",)), tmp_path / "out.txt"
    try:
        assert forks(["t.py"], out, threads=1) == 0 and forks(["t.py"], out) == 0
    finally:
        forks.close()
    assert out.read_text().split() == ["1", default.strip()]
