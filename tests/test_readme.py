"""The Python snippets of the README and of every guide run, in order, as written.

A block whose first line starts with ``# On a GPU`` runs on the CuPy simulation
(``tests/simulated_cupy.py``), so GPU examples run everywhere."""

import contextlib
import re
from pathlib import Path

import pytest

from tests import simulated_cupy

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "guides").glob("*.md"))]


def run_python_blocks(path):
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    assert blocks, f"{path.name} has no python example"
    namespace = {}
    for block in blocks:
        on_gpu = block.startswith("# On a GPU")
        with simulated_cupy.installed() if on_gpu else contextlib.nullcontext():
            exec(compile(block, str(path), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_document_code_runs(path):
    run_python_blocks(path)


def test_readme_example_recovers_the_weights(capsys):
    namespace = run_python_blocks(ROOT / "README.md")
    w = namespace["w"].ravel()
    assert abs(w[0] - 1.0) < 0.05 and abs(w[1] + 2.0) < 0.05 and abs(w[2] - 0.5) < 0.05
