#!/usr/bin/env bash
# Create (or update) the course's virtual environment: pinned packages, the `utils` package
# in editable mode, and Horovod built from source (tools/build_horovod.sh).
#
# Usage: tools/setup_env.sh VENV_DIR
# Environment: PYTHON (default python3), TF_PACKAGE (default tensorflow-cpu==2.21.0),
#              HOROVOD_GPU (empty for CPU/Gloo, NCCL for the GPU image).
set -euo pipefail

venv=${1:?usage: tools/setup_env.sh VENV_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
tf_package=${TF_PACKAGE:-tensorflow-cpu==2.21.0}

command -v "$python" >/dev/null || { echo "setup: '$python' not found; install Python 3" >&2; exit 1; }
# The supported Pythons are stated once, as classifiers in pyproject.toml.
"$python" - "$here/pyproject.toml" <<'EOF' || exit 1
import re, sys
supported = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', open(sys.argv[1]).read())
found = f"{sys.version_info.major}.{sys.version_info.minor}"
if found not in supported:
    sys.exit(f"setup: Python {' or '.join(supported)} expected, found {sys.version.split()[0]}; "
             "choose another with `make setup PYTHON=python3.12`")
EOF

start=$SECONDS
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv with $("$python" --version)"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade "pip>=24"
echo "setup: installing $tf_package and requirements.txt"
"${pip[@]}" install --quiet "$tf_package" -r "$here/requirements.txt"
"${pip[@]}" install --quiet --no-deps --editable "$here"
echo "setup: python packages ready in $((SECONDS - start)) s"

"$here/tools/build_horovod.sh" "$venv"
echo "setup: done in $((SECONDS - start)) s"
