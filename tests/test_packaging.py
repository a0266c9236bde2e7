"""What an sdist and a wheel need, checked without building them (.ci/run builds the sdist and
installs it in a fresh virtual environment)."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_sdist_carries_what_the_kernel_build_reads():
    manifest = (ROOT / "MANIFEST.in").read_text()
    included = {name for line in manifest.splitlines() if line.startswith("include ")
                for name in line.split()[1:]}
    # py.typed, and the headers every program compiled by jit's native backend includes
    needed = {"axon_fn/py.typed"} | {
        f"axon_fn/_compile/{path.name}" for path in (ROOT / "axon_fn/_compile").glob("*.h")} | {
        f"native/{path.name}" for path in (ROOT / "native").iterdir()
        if path.suffix in (".c", ".h", ".py")}
    assert {"native/build_native.py", "native/axon_kernels.h", "native/axon_kernels.c"} <= needed
    assert needed <= included, f"missing from MANIFEST.in: {sorted(needed - included)}"
    assert all((ROOT / name).is_file() for name in needed)


def test_the_wheel_tag_matches_the_oldest_python_declared():
    minimum = re.search(r'requires-python = ">=3\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    limited = re.search(r'"py_limited_api": "cp3(\d+)"', (ROOT / "setup.py").read_text())
    assert minimum and limited and minimum.group(1) == limited.group(1)
