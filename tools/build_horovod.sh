#!/usr/bin/env bash
# Build Horovod 0.28.1 (TensorFlow + Gloo, optionally NCCL) from its pinned, checksummed
# source distribution, patched for TensorFlow >= 2.19, and install it for one Python.
#
# TARGET is a venv or conda prefix (its bin/python is used) or a Python interpreter, such as
# Colab's system `python3`, whose packages live in the system site-packages and whose scripts
# (horovodrun, cmake) in /usr/local/bin. Relative paths are fine: they are made absolute first,
# because pip builds Horovod in another folder.
#
# The built wheel is cached outside the target (HOROVOD_WHEEL_CACHE, default
# ~/.cache/dl-course/wheels), keyed by the source's checksum, the patch, Python and TensorFlow
# version (and the GPU operations), so a new venv or a second
# `make setup` reinstalls it in seconds instead of compiling for minutes.
#
# Usage: tools/build_horovod.sh TARGET        Environment: HOROVOD_GPU (empty or NCCL)
set -euo pipefail
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

target=${1:?usage: tools/build_horovod.sh VENV_DIR|PYTHON}
here=$(cd "$(dirname "$0")" && pwd)
version=0.28.1
sdist_sha256=92a43f5a94c43907a56805bad15f19700c62ffc83b7ca483f9e104e229f67ef0
patch_file=$here/patches/horovod-$version-no-xla-ops.patch
gpu=${HOROVOD_GPU:-}

if [ -d "$target" ]; then
    py=$(cd "$target" && pwd)/bin/python
elif [ -x "$target" ] || command -v "$target" >/dev/null; then
    py=$(command -v "$target")
    py=$(cd "$(dirname "$py")" && pwd)/$(basename "$py")
else
    echo "horovod: expected a venv folder or a Python interpreter, got '$target'" >&2
    exit 2
fi
[ -x "$py" ] || { echo "horovod: no Python at $py (is '$target' a venv?)" >&2; exit 2; }
# Where pip puts this Python's commands (horovodrun, and cmake from requirements.txt).
bin=$("$py" -c "import sysconfig; print(sysconfig.get_path('scripts'))")

# True when `horovodrun --check-build` lists TensorFlow and Gloo. The output is captured first:
# piping it into `grep -q` lets grep exit early, and horovodrun then dies of a broken pipe.
built_with_tf_and_gloo() {
    local report
    report=$("$bin/horovodrun" --check-build 2>/dev/null) || return 1
    grep -q "\[X\] TensorFlow" <<<"$report" && grep -q "\[X\] Gloo" <<<"$report"
}

# Already installed with the frameworks we need? Then there is nothing to do.
if [ -x "$bin/horovodrun" ] && built_with_tf_and_gloo; then
    echo "horovod: $version already installed for $py"
    exit 0
fi

# Horovod's build tools and runtime dependencies, at the pins of requirements.txt, for those this
# Python lacks (a venv from `make setup` has them all; Colab's or conda's Python may not).
missing=$("$py" - "$here/../requirements.txt" <<'EOF'
import importlib.metadata as m, re, sys
needed = {"cmake", "setuptools", "wheel", "cffi", "cloudpickle", "psutil", "pyyaml", "packaging"}
for line in open(sys.argv[1]):
    pin = line.split("#")[0].strip()
    name = re.split(r"[=<>]", pin)[0].lower()
    if name in needed:
        try:
            m.version(name)
        except m.PackageNotFoundError:
            print(pin)
EOF
)
if [ -n "$missing" ]; then
    echo "horovod: installing the build tools it needs:" $missing
    # shellcheck disable=SC2086  # one pin per word
    "$py" -m pip install --quiet --disable-pip-version-check $missing
fi

tf_version=$("$py" -c "import importlib.metadata as m, sys
for name in ('tensorflow-cpu', 'tensorflow'):
    try: print(m.version(name)); sys.exit()
    except m.PackageNotFoundError: pass
sys.exit(f'horovod: TensorFlow is not installed for {sys.executable}; install it first')")
py_tag=$("$py" -c "import sys; print(f'cp{sys.version_info.major}{sys.version_info.minor}')")
source_key=${sdist_sha256:0:8}-$(sha256sum "$patch_file" | cut -c1-8)
cache=${HOROVOD_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dl-course/wheels}/horovod-$version-$source_key-tf$tf_version-$py_tag${gpu:+-$gpu}
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
    # This Python's cmake (from PyPI) comes first on PATH, as an absolute path: pip runs the
    # build in another folder. Gloo's old CMakeLists needs the policy floor.
    env PATH="$bin:$PATH" \
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
    "$bin/horovodrun" --check-build >&2 || true
    echo "horovod: installed, but horovodrun --check-build does not list TensorFlow and Gloo" >&2
    exit 1
}
echo "horovod: $version installed ($(basename "$wheel"))"
