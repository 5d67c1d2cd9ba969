# Shared test setup: the repo root on sys.path (tests import the scripts as modules), Triton in interpreter
# mode (CI has no GPU; kernels are tested on CPU tensors), and a fixed thread count for determinism/speed.
import os
import sys

os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))
