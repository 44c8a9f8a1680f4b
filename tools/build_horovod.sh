#!/usr/bin/env bash
# Build Horovod 0.28.1 (TensorFlow + Gloo, optionally NCCL) from its pinned, checksummed
# source distribution, patched for TensorFlow >= 2.19, and install it into a venv.
#
# The built wheel is cached outside the venv (HOROVOD_WHEEL_CACHE, default
# ~/.cache/dl-course/wheels), keyed by Python and TensorFlow version, so a new venv or a second
# `make setup` reinstalls it in seconds instead of compiling for minutes.
#
# Usage: tools/build_horovod.sh VENV_DIR        Environment: HOROVOD_GPU (empty or NCCL)
set -euo pipefail
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

venv=${1:?usage: tools/build_horovod.sh VENV_DIR}
here=$(cd "$(dirname "$0")" && pwd)
version=0.28.1
sdist_sha256=92a43f5a94c43907a56805bad15f19700c62ffc83b7ca483f9e104e229f67ef0
patch_file=$here/patches/horovod-$version-no-xla-ops.patch
gpu=${HOROVOD_GPU:-}
py=$venv/bin/python

# True when `horovodrun --check-build` lists TensorFlow and Gloo. The output is captured first:
# piping it into `grep -q` lets grep exit early, and horovodrun then dies of a broken pipe.
built_with_tf_and_gloo() {
    local report
    report=$("$venv/bin/horovodrun" --check-build 2>/dev/null) || return 1
    grep -q "\[X\] TensorFlow" <<<"$report" && grep -q "\[X\] Gloo" <<<"$report"
}

# Already installed with the frameworks we need? Then there is nothing to do.
if [ -x "$venv/bin/horovodrun" ] && built_with_tf_and_gloo; then
    echo "horovod: $version already installed in $venv"
    exit 0
fi

tf_version=$("$py" -c "import importlib.metadata as m, sys
for name in ('tensorflow-cpu', 'tensorflow'):
    try: print(m.version(name)); sys.exit()
    except m.PackageNotFoundError: pass
sys.exit('horovod: TensorFlow is not installed in the venv; install it first')")
py_tag=$("$py" -c "import sys; print(f'cp{sys.version_info.major}{sys.version_info.minor}')")
cache=${HOROVOD_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dl-course/wheels}/horovod-$version-tf$tf_version-$py_tag${gpu:+-$gpu}
wheel=$(ls "$cache"/horovod-*.whl 2>/dev/null | head -n 1 || true)

if [ -z "$wheel" ]; then
    for tool in c++ make patch; do
        command -v "$tool" >/dev/null || {
            echo "horovod: building Horovod needs '$tool', which is not installed." >&2
            echo "         On Debian/Ubuntu: apt-get install -y g++ make patch" >&2
            exit 1
        }
    done
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    echo "horovod: downloading the $version source distribution"
    "$py" -m pip download --quiet --no-deps --no-binary :all: "horovod==$version" -d "$work"
    echo "$sdist_sha256  $work/horovod-$version.tar.gz" | sha256sum --check --quiet || {
        echo "horovod: checksum mismatch for horovod-$version.tar.gz; refusing to build it" >&2
        exit 1
    }
    tar -xzf "$work/horovod-$version.tar.gz" -C "$work"
    patch --quiet -p1 -d "$work/horovod-$version" < "$patch_file"
    echo "horovod: compiling (TensorFlow $tf_version, Gloo${gpu:+, $gpu}); about 3-4 minutes on 2 cores"
    start=$SECONDS
    # The venv's cmake (from PyPI) comes first on PATH; Gloo's old CMakeLists needs the policy floor.
    env PATH="$venv/bin:$PATH" \
        CMAKE_POLICY_VERSION_MINIMUM=3.5 \
        HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
        HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
        ${gpu:+"HOROVOD_GPU_OPERATIONS=$gpu"} MAKEFLAGS="-j$(nproc)" \
        "$py" -m pip wheel --quiet --no-deps --no-build-isolation \
        "$work/horovod-$version" -w "$work/dist" > "$work/build.log" 2>&1 || {
            tail -n 40 "$work/build.log" >&2
            echo "horovod: build failed (full log above, last 40 lines)" >&2
            exit 1
        }
    mkdir -p "$cache"
    cp "$work"/dist/horovod-*.whl "$cache/"
    wheel=$(ls "$cache"/horovod-*.whl | head -n 1)
    echo "horovod: built $(basename "$wheel") in $((SECONDS - start)) s, cached in $cache"
else
    echo "horovod: using the cached wheel $wheel"
fi

"$py" -m pip install --quiet --no-deps --force-reinstall "$wheel"
built_with_tf_and_gloo || {
    "$venv/bin/horovodrun" --check-build >&2 || true
    echo "horovod: installed, but horovodrun --check-build does not list TensorFlow and Gloo" >&2
    exit 1
}
echo "horovod: $version installed ($(basename "$wheel"))"
