"""The SLURM job scripts of chapter 07: valid bash, the resources they need, the right command."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SLURM = ROOT / "notebooks" / "slurm"
SCRIPTS = {"one_node": SLURM / "one_node_4gpus.sbatch", "multi_node": SLURM / "multi_node.sbatch"}
TRAINING_SCRIPT = "notebooks/scripts/train_mnist_hvd.py"
REQUIRED = ("job-name", "nodes", "ntasks-per-node", "gres", "cpus-per-task", "time", "output")


def sbatch_options(path: Path) -> dict[str, str]:
    """The #SBATCH options, as SLURM reads them: only in the header, before the first command."""
    options = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            break
        match = re.match(r"#SBATCH\s+--([a-z-]+)=(\S+)", line)
        if match:
            options[match.group(1)] = match.group(2)
    return options


def dry_run(path: Path, tmp_path: Path, **env: str) -> str:
    """Run a job script with DRY_RUN=1 under a fake SLURM environment; return the command."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    scontrol = bin_dir / "scontrol"  # `scontrol show hostnames node[01-02]` -> one per line
    scontrol.write_text("#!/bin/sh\nprintf 'node01\\nnode02\\n'\n")
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    full_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DRY_RUN": "1",
                "SLURM_SUBMIT_DIR": str(ROOT), "SLURM_JOB_ID": "123", **env}
    result = subprocess.run(["bash", str(path)], env=full_env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_slurm_script_is_valid_bash(name):
    result = subprocess.run(["bash", "-n", str(SCRIPTS[name])], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_slurm_script_asks_for_one_rank_per_gpu(name):
    options = sbatch_options(SCRIPTS[name])
    missing = [key for key in REQUIRED if key not in options]
    assert not missing, f"{SCRIPTS[name].name} lacks #SBATCH --{', --'.join(missing)}"
    gpus = int(options["gres"].removeprefix("gpu:"))
    assert options["gres"] == f"gpu:{gpus}" and gpus == int(options["ntasks-per-node"])
    assert re.fullmatch(r"\d+:\d\d:\d\d", options["time"])


def test_one_node_script_uses_one_node_with_four_gpus():
    options = sbatch_options(SCRIPTS["one_node"])
    assert options["nodes"] == "1" and options["gres"] == "gpu:4"


def test_multi_node_script_uses_several_nodes():
    assert int(sbatch_options(SCRIPTS["multi_node"])["nodes"]) >= 2


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_slurm_script_launches_the_course_training_script(name):
    text = SCRIPTS[name].read_text()
    assert TRAINING_SCRIPT in text and (ROOT / TRAINING_SCRIPT).exists()
    assert "set -euo pipefail" in text
    for variable in ("HOROVOD_GLOO_TIMEOUT_SECONDS", "HOROVOD_STALL_SHUTDOWN_TIME_SECONDS",
                     "TF_CPP_MIN_LOG_LEVEL", "NCCL_DEBUG"):
        assert f"export {variable}=" in text, f"{SCRIPTS[name].name} does not set {variable}"


def test_one_node_script_starts_four_local_ranks(tmp_path):
    command = dry_run(SCRIPTS["one_node"], tmp_path, SLURM_NTASKS="4")
    assert command.startswith("horovodrun -np 4 -H localhost:4 --gloo")
    assert TRAINING_SCRIPT in command and "results-123.json" in command


def test_multi_node_script_lists_every_node_with_its_slots(tmp_path):
    command = dry_run(SCRIPTS["multi_node"], tmp_path, SLURM_NTASKS="8",
                      SLURM_NTASKS_PER_NODE="4", SLURM_JOB_NODELIST="node[01-02]", IFACE="eth7")
    assert command.startswith("horovodrun -np 8 -H node01:4,node02:4 --gloo")
    assert "--network-interface eth7" in command and TRAINING_SCRIPT in command


def test_multi_node_script_can_launch_with_srun(tmp_path):
    command = dry_run(SCRIPTS["multi_node"], tmp_path, LAUNCHER="srun", SLURM_NTASKS="8",
                      SLURM_NTASKS_PER_NODE="4", SLURM_JOB_NODELIST="node[01-02]")
    assert command.startswith("srun --mpi=pmix --ntasks-per-node=4") and TRAINING_SCRIPT in command


def test_multi_node_script_rejects_an_unknown_launcher(tmp_path):
    env = {"PATH": os.environ["PATH"], "DRY_RUN": "1", "LAUNCHER": "mpirun",
           "SLURM_SUBMIT_DIR": str(ROOT)}
    result = subprocess.run(["bash", str(SCRIPTS["multi_node"])], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "LAUNCHER must be horovodrun or srun" in result.stderr
