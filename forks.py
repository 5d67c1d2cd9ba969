"""forks.py — run the project's scripts as `python SCRIPT ARGS` would, ~5 s faster each: machinery
for reproduce.py (hundreds of scripts a full run) and the tests; a first reading can skip it.

A new Python process spends ~3 s importing torch & co. and ~2 s tearing them down at exit. Here one
server process imports them once; each script runs in a fork of it, with a fresh __main__, its argv,
its folder first on sys.path, its cwd, its output files and its exit code, and leaves with os._exit
after its atexit handlers and a flush of stdout/stderr: a file a script left open and unflushed
would lose its buffer (the project's scripts close theirs). The server itself never runs a torch op
(no OpenMP thread pool, no CUDA context), which is what makes forking it safe. Linux only:
elsewhere (macOS, Windows) each script is a new process, as `subprocess` would start it.
"""
import json
import os
import subprocess
import sys

# The server: imports `preload` (its arguments), then forks a child per line of stdin
# [argv, cwd, out, err, threads] and answers with the child's exit code.
FORKER = r"""
import atexit, importlib, json, os, runpy, signal, sys, traceback
sys.path.pop(0)
signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C stops the script and its caller, not this
for name in sys.argv[1:]:                 # what the scripts import, imported once here
    try:
        importlib.import_module(name)
    except ImportError:                   # an optional one (matplotlib): the script says so itself
        pass
for line in sys.stdin:
    argv, cwd, out, err, threads = json.loads(line)
    if (pid := os.fork()) == 0:
        signal.signal(signal.SIGINT, signal.default_int_handler)   # the script's: KeyboardInterrupt
        if threads:                           # the caller's share of the cores: torch's threads
            import torch
            torch.set_num_threads(threads)
        os.chdir(cwd)
        for fd, path in ((0, os.devnull), (1, out), (2, err)):     # output appended to the files
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND if fd else os.O_RDONLY
            os.dup2(os.open(path, flags), fd)
        sys.argv, sys.path[:0] = argv, [os.path.dirname(os.path.abspath(argv[0]))]
        code = 0
        try:                                  # an exception or sys.exit(x) ends it as python would
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as e:
            code = e.code or 0
            if not isinstance(code, int):     # sys.exit("message"): printed, exit code 1
                print(code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()               # then out, without the interpreter's teardown of
        sys.stdout.flush(), sys.stderr.flush()    # torch & co. (~2 s a script)
        os._exit(code)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""
PRELOAD = ("numpy", "tiktoken", "torch", "tqdm",
           "torch._dynamo",                                      # AdamW's first step imports it
           "matplotlib.figure", "matplotlib.backends.backend_agg")  # train.py's curves.png


class Forks:
    """forks(argv, out, err=None, cwd=None, threads=None) -> exit code of `python *argv` in cwd
    (default: the server's) on `threads` torch threads (default: torch's), stdout appended to file
    `out`, stderr to `err` (default: `out`). Linux; elsewhere (no safe fork) a new process each."""
    def __init__(self, cwd, env=None, preload=PRELOAD):
        self.cwd, self.env, self.server = str(cwd), env, None
        if sys.platform == "linux":
            # a request a line on its stdin; the exit code a line on its stdout
            self.server = subprocess.Popen([sys.executable, "-c", FORKER, *preload], cwd=cwd,
                                           env=env, text=True, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE)

    def __call__(self, argv, out, err=None, cwd=None, threads=None):
        cwd, err = str(cwd or self.cwd), err or out
        if not self.server:
            env = {**(self.env or os.environ), **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
            with open(out, "a") as o, open(err, "a") as e:
                return subprocess.call([sys.executable, *argv], cwd=cwd, env=env, stdout=o, stderr=e)
        self.server.stdin.write(json.dumps([argv, cwd, str(out), str(err), threads]) + "\n")
        self.server.stdin.flush()
        code = self.server.stdout.readline()        # "": the server died; its error is on stderr
        if not code:
            raise RuntimeError(f"the script server died running {' '.join(argv)} (see above)")
        return int(code)

    def close(self):
        """End the server (it exits when its stdin closes) and wait for it."""
        if self.server:
            self.server.stdin.close()
            self.server.wait()
