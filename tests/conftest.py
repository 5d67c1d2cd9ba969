# Shared test setup: the repo root on sys.path (tests import the scripts as modules), Triton in interpreter
# mode (CI has no GPU; kernels are tested on CPU tensors), and a fixed thread count for determinism/speed.
import os
import sys

os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


def make_shards(tmp_path, docs, K=512, **prepare_kw):
    """Shards of `docs` (documents joined by <|endoftext|> lines) encoded with a compact tokenizer of K
    tokens made for them: small vocabularies keep training tests fast. Returns the shard folder."""
    import tokenizer_compress as tc
    from data.prepare import prepare, SEPARATOR
    (tmp_path / "corpus.txt").write_text("".join(d + f"\n{SEPARATOR}\n" for d in docs))
    base = tc.load_tokenizer("cl100k_base")
    table = tc.count_corpus(base, docs, "corpus")
    enc, _ = tc.compress(base, table, K)
    tc.save_tokenizer(enc, base, str(tmp_path / "tok.json"))
    return prepare(str(tmp_path / "corpus.txt"), out_dir=str(tmp_path / "shards"),
                   tokenizer=str(tmp_path / "tok.json"), **prepare_kw)["out_dir"]
