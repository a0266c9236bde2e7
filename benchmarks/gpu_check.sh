#!/usr/bin/env bash
# One run on a machine with an NVIDIA GPU and CuPy: install axon_fn (compiling its C kernels),
# run the GPU tests on the real device, then the GPU benchmark at the workloads' batch sizes
# and at eight times them. Results go to $OUT (default /tmp/axon_fn_gpu): the pytest summary,
# and the benchmark tables as text and JSON.
#
#   bash benchmarks/gpu_check.sh [WHEELS_DIR]
#
# WHEELS_DIR (default .gpu_wheels) holds wheels for a machine that cannot reach a package
# index, e.g. made beforehand on a machine that can:
#   pip download optree cffi pycparser typing-extensions --only-binary=:all: \
#       --python-version 3.12 --platform manylinux2014_x86_64 -d .gpu_wheels
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/axon_fn_gpu}
WHEELS=${1:-.gpu_wheels}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"

if [ -d "$WHEELS" ]; then
    "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" optree cffi
fi
"$PYTHON" -m pip install -q --no-deps --no-build-isolation -e .
"$PYTHON" -c "import axon_fn, json; print(json.dumps(axon_fn.backend_info()))" \
    | tee "$OUT/backend_info.json"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

# the cuda half of tests/test_gpu.py (the simulated half runs in CI)
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_gpu.py -k cuda -o addopts="" \
    2>&1 | tail -25 | tee "$OUT/gpu_tests.txt" || true

for scale in 1 8; do
    "$PYTHON" benchmarks/bench_train.py --device cuda --frameworks axon_fn,torch --reps 5 \
        --batch-scale "$scale" --json "$OUT/bench_gpu_x$scale.json" \
        2>"$OUT/bench_gpu_x$scale.log" | tee "$OUT/bench_gpu_x$scale.txt" || true
done
