#!/usr/bin/env bash
# The GPU check: chapter 06 on Keras' JAX backend and a GPU, keras.distribution's DataParallel,
# bfloat16 against float32 (tools/gpu_check.py says what it measures). Made for the lent GPU
# machine: Python 3.12 with JAX and CUDA, no TensorFlow, no Keras, no network, 64 MiB carried.
#
#   tools/gpu_check.sh prepare [PYTHON_VERSION]   here: the wheels the GPU machine lacks (Keras
#                                                 and its pure-Python needs) and MNIST, in .gpu/
#   tools/gpu_check.sh run OUT_DIR [--quick]      there: install the wheels aside (not into its
#                                                 Python), run the check, write its JSON to OUT_DIR
#
# Tested on a CPU with `JAX_PLATFORMS=cpu tools/gpu_check.sh run OUT --quick` after
# `tools/gpu_check.sh prepare 3.11`, in a venv holding only what the GPU machine has.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=$(realpath -m "${GPU_CHECK_DIR:-.gpu}")  # what travels there (git ignores .gpu/)
KERAS=$(grep -E '^keras==' requirements.txt)
WHEELS=("$KERAS" namex==0.1.0 optree==0.20.0)  # keras' needs the GPU machine does not have

case "${1:-}" in
prepare)
    python_version=${2:-3.12}
    if [ -d "$GPU_DIR" ] && find "$GPU_DIR" -mindepth 1 -maxdepth 1 ! -name wheels ! -name data \
            | grep -q .; then
        echo "$GPU_DIR holds other files; name an empty or new folder with GPU_CHECK_DIR" >&2
        exit 2
    fi
    rm -rf "$GPU_DIR/wheels" "$GPU_DIR/data" && mkdir -p "$GPU_DIR/wheels" "$GPU_DIR/data"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$GPU_DIR/wheels" "${WHEELS[@]}"
    python=${PYTHON:-.venv/bin/python}
    "$python" -m utils.data  # make data: verified MNIST in the course's cache
    "$python" - "$GPU_DIR/data/mnist.npz" <<'PY'  # compressed: 11 MB instead of 53 travel
import sys

import numpy as np

from utils.data import default_data_dir

with np.load(default_data_dir() / "mnist.npz") as arrays:
    np.savez_compressed(sys.argv[1], **arrays)
PY
    du -sh "$GPU_DIR"
    ;;
run)
    out=${2:?usage: tools/gpu_check.sh run OUT_DIR [--quick]}
    shift 2
    if [ ! -d "$GPU_DIR/wheels" ]; then
        echo "no $GPU_DIR/wheels: run 'tools/gpu_check.sh prepare' first" >&2
        exit 2
    fi
    site=$(mktemp -d)
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" \
        "$GPU_DIR"/wheels/*.whl
    mkdir -p "$out"
    PYTHONPATH="$site:$PWD" KERAS_BACKEND=jax COURSE_DATA_DIR="$GPU_DIR/data" \
        PYTHONUNBUFFERED=1 python3 tools/gpu_check.py --out "$out/gpu_check.json" "$@"
    ;;
*)
    echo "usage: tools/gpu_check.sh prepare [PYTHON_VERSION] | run OUT_DIR [--quick]" >&2
    exit 2
    ;;
esac
