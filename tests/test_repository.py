"""Static checks of the repository: notebook conventions, Colab links, Dockerfile, Makefile."""

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest

from utils import exercises, runner

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_PATHS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
MAKEFILE = (ROOT / "Makefile").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
_spec = importlib.util.spec_from_file_location("repo_url", ROOT / "tools" / "repo_url.py")
repo_url = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(repo_url)
_spec = importlib.util.spec_from_file_location("learner_time", ROOT / "tools" / "learner_time.py")
learner_time = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(learner_time)


def load(path):
    return json.loads(path.read_text())


def source(cell):
    return "".join(cell["source"])


@pytest.fixture(params=NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def notebook(request):
    return request.param, load(request.param)


def test_notebooks_are_numbered_in_reading_order_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOK_PATHS]
    assert numbers == list(range(1, len(numbers) + 1))
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", p.name) for p in NOTEBOOK_PATHS)


def test_each_notebook_opens_with_a_title_and_a_colab_badge_for_itself(notebook):
    path, nb = notebook
    first = source(nb["cells"][0])
    assert first.startswith(f"# {path.name[:2]} · ")
    github = REPOSITORY.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{github}/blob/main/notebooks/{path.name}"
    assert badge in first, f"{path.name}: the Colab badge must link to {badge}"


def test_each_notebook_has_one_parameters_cell_then_the_setup_cell(notebook):
    path, nb = notebook
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, is tagged parameters"
    assert "SEED" in source(code[0])
    setup = source(code[1])
    assert f"dl-course-utils @ git+{REPOSITORY}" in setup, "Colab installs utils from the repo"
    assert '"google.colab" in sys.modules' in setup
    assert "utils.setup_notebook(SEED" in setup


def test_each_notebook_has_marked_exercises_then_takeaways_then_a_solutions_appendix(notebook):
    path, nb = notebook
    cells, chapter = nb["cells"], path.name[:2]
    ids = exercises.exercise_ids(cells)
    prompts = re.findall(rf"\*\*Exercise ({chapter}\.\d+)(?::[^*]*)?\*\*",  # an optional title
                         "\n".join(source(c) for c in exercises.split_appendix(cells)[0]))
    assert ids and prompts == ids, f"{path.name}: each exercise has one prompt and one cell"
    for exercise_id, index in exercises.exercise_cells(cells).items():
        cell = cells[index]
        assert cell["metadata"].get(exercises.EXERCISE) == exercise_id, "marked in metadata"
        assert source(cell).rstrip().splitlines()[-1].startswith(f'check("{exercise_id}"'), (
            f"{exercise_id}: the cell ends with its check")
    before, appendix = exercises.split_appendix(cells)
    assert "Key takeaways" in source(before[-1]), "takeaways close the chapter, then the appendix"
    heading, *solutions = appendix
    assert heading["metadata"] == {exercises.APPENDIX: exercises.APPENDIX_VALUE}
    assert source(heading).startswith(exercises.SOLUTIONS_HEADING)
    assert [exercises.solution_of(c) for c in solutions] == ids, "one solution per exercise"
    assert "### BEGIN SOLUTION" not in "\n".join(source(c) for c in cells)


def test_stored_outputs_show_unanswered_exercises_and_passing_solutions(notebook):
    """What a learner sees before running anything: the checks of Run All on the notebook."""
    path, nb = notebook
    cells = nb["cells"]
    for kind, found, verdict in [("exercise", exercises.exercise_cells(cells), "not answered yet"),
                                 ("solution", exercises.solution_cells(cells), "correct.")]:
        for exercise_id, index in found.items():
            outputs = cells[index]["outputs"]
            text = "".join("".join(o.get("text", "")) for o in outputs)
            assert f"Exercise {exercise_id}: {verdict}" in text, f"{path.name} {kind} {exercise_id}"
            assert not [o for o in outputs if o["output_type"] == "execute_result"], (
                f"{path.name} {kind} {exercise_id}: the check leaves no value (a stray `True`)")


def test_committed_notebooks_carry_outputs_but_no_volatile_metadata(notebook):
    path, nb = notebook
    assert "papermill" not in nb["metadata"] and "widgets" not in nb["metadata"]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[1]["outputs"], f"{path.name}: the setup cell has no output; run `make outputs`"
    for cell in code:
        assert not {"execution", "papermill"} & set(cell["metadata"])
        assert not [o for o in cell["outputs"] if o["output_type"] == "error"]


def test_stored_outputs_show_every_claim_holding(notebook):
    path, nb = notebook
    found = runner.claims_of(nb)
    assert found, f"{path.name} states no claim"
    assert [c["sentence"] for c in found if not c["holds"]] == [], path.name


def test_notebooks_use_current_keras_idiom(notebook):
    path, nb = notebook
    code = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "code")
    for legacy in ["input_shape=", "lr=", "keras.optimizers.sgd", "from tensorflow import keras",
                   "tf.keras"]:
        assert legacy not in code, f"{path.name} uses the legacy {legacy!r}"


# What only CI needs: an assert, a flag that gates assertions, a look at the machine's hardware.
PLUMBING = re.compile(r"^\s*assert\b|\bFULL_RUN\b|/proc/|\bcpu_count\(|\blscpu\b", re.M)


def test_cells_a_learner_reads_hold_the_lesson_not_verification_plumbing(notebook):
    """Claims go through `utils.claim`; a cell that must hold plumbing hides its input and says
    why in its first line (a comment)."""
    path, nb = notebook
    for number, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        text = source(cell)
        if cell["metadata"].get("jupyter", {}).get("source_hidden"):
            assert text.startswith("# "), f"{path.name} cell {number}: hidden, but says not why"
            continue
        found = PLUMBING.search(text)
        assert found is None, f"{path.name} cell {number} shows {found.group().strip()!r}"


@pytest.mark.parametrize(("module", "heavy"), [
    ("utils", {"tensorflow", "keras", "matplotlib", "horovod", "utils.horovod_keras"}),
    ("utils.claims", {"tensorflow", "keras", "matplotlib", "numpy"}),
    ("utils.distributed", {"tensorflow", "keras", "horovod", "utils.horovod_keras"}),
    ("utils.playground", {"tensorflow", "keras", "ipywidgets"}),
    ("utils.plots", {"matplotlib"}),
])
def test_importing_a_helper_module_loads_nothing_heavy(module, heavy):
    """`import utils` and its light modules stay fast: heavy libraries load on first use."""
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(set(sys.modules) & set({sorted(heavy)!r})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def make_targets():
    return set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE, flags=re.M))


def test_makefile_has_the_readme_commands():
    assert {"setup", "run", "test", "data", "lab", "student", "grade", "docker-build",
            "docker-run"} <= make_targets()
    assert "make run" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_dockerfile_base_images_are_pinned_to_versions():
    images = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, flags=re.M)
    external = [i for i in images if not i.startswith("base-")]
    assert external, "no base image"
    for image in external:
        assert re.search(r":\d+\.\d+\.\d+", image), f"{image} is not pinned to a version"


def test_dockerfile_reuses_the_tested_setup_target():
    called = re.findall(r"(?:RUN|&&)\s+make\s+([a-z-]+)", DOCKERFILE)
    called += re.findall(r'CMD \["make", "([a-z-]+)"', DOCKERFILE)
    assert "setup" in called and "lab" in called
    for target in called:
        assert target in make_targets(), f"Dockerfile calls `make {target}`, which does not exist"
    assert "make setup" in DOCKERFILE


def test_dockerfile_serves_jupyterlab_on_8888_as_a_non_root_user_with_a_token():
    assert re.search(r"^EXPOSE 8888$", DOCKERFILE, flags=re.M)
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, flags=re.M)
    assert users and users[-1] not in {"root", "0"}
    assert "--port=8888" in DOCKERFILE and "--ip=0.0.0.0" in DOCKERFILE
    for disabled in ["token=''", 'token=""', "token= ", "disable_check_xsrf", "--allow-root"]:
        assert disabled not in DOCKERFILE


def test_dockerfile_offers_a_gpu_variant():
    assert "ARG VARIANT=cpu" in DOCKERFILE and "AS base-gpu" in DOCKERFILE
    assert "HOROVOD_GPU=NCCL" in DOCKERFILE and "and-cuda" in DOCKERFILE


def test_environment_yml_installs_the_same_pins_as_make_setup():
    env = (ROOT / "environment.yml").read_text()
    assert "-r requirements.txt" in env and "conda-forge" in env
    tf_pin = re.search(r"TF_PACKAGE\s+\?= (\S+)", MAKEFILE).group(1)
    assert tf_pin in env


def test_requirements_are_exact_pins():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text()
             .splitlines()]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][^\s]*", line) for line in lines if line)


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SUPPORTED_PYTHONS = [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["classifiers"]
                     if c.startswith("Programming Language :: Python :: 3.")]


def test_the_supported_pythons_are_stated_once_in_pyproject():
    assert SUPPORTED_PYTHONS == ["3.11", "3.12", "3.13"]
    assert PYPROJECT["requires-python"] == f">={SUPPORTED_PYTHONS[0]}"
    for path in ["tools/setup_env.sh", "utils/notebook.py", "Dockerfile"]:
        text = (ROOT / path).read_text()
        assert not re.search(r"\(3, 1\d\)|MIN_PYTHON|Python 3\.1\d", text), path


@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_the_pins_resolve_for_every_supported_python(tmp_path, python):
    """Resolution only (pip --dry-run against the package index), no download of the wheels."""
    import subprocess
    import sys

    tf_pin = re.search(r"TF_PACKAGE\s+\?= (\S+)", MAKEFILE).group(1)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
         "--python-version", python, "--only-binary", ":all:", "--target", str(tmp_path),
         "--disable-pip-version-check", tf_pin, "-r", str(ROOT / "requirements.txt")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_copy_of_the_course_url_agrees_with_pyproject():
    copies = repo_url.copies()
    assert len(copies) >= 1 + 2 * len(NOTEBOOK_PATHS) + len(NOTEBOOK_PATHS)  # + README badges
    assert repo_url.disagreeing() == []
    # No copy hides from the tool: every mention of the repository is one it rewrites.
    path = REPOSITORY.removeprefix("https://github.com/")
    mentions = sum(p.read_text().count(path) for p in repo_url.course_files())
    assert mentions == len(copies)
    others = [p for p in ROOT.glob("**/*") if p.is_file() and ".venv" not in p.parts
              and ".git" not in p.parts and "fixtures" not in p.parts and "build" not in p.parts
              and p not in repo_url.course_files() and p.suffix in {".py", ".sh", ".md", ".ipynb",
                                                                    ".yml", ".toml", ".sbatch"}]
    assert [p for p in others if path in p.read_text(errors="ignore")] == []


def test_make_repo_url_rewrites_every_copy_for_a_fork(tmp_path):
    import shutil

    for file in repo_url.course_files():
        target = tmp_path / file.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target)
    fork = "https://github.com/some-one/my.course"
    assert repo_url.set_url(fork, tmp_path) == len(repo_url.course_files())
    assert {url for _, url in repo_url.copies(tmp_path)} == {fork}
    assert len(repo_url.copies(tmp_path)) == len(repo_url.copies())
    for file in repo_url.course_files(tmp_path):
        assert REPOSITORY not in file.read_text()
        if file.suffix == ".ipynb":
            json.loads(file.read_text())  # still a notebook
    assert "repo-url:" in MAKEFILE and "tools/repo_url.py --set" in MAKEFILE


def test_make_repo_url_refuses_what_colab_cannot_open(tmp_path):
    with pytest.raises(SystemExit, match="expected a GitHub repository URL"):
        repo_url.set_url("https://gitlab.com/me/course", tmp_path)



@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.stem)
def test_every_chapter_fits_a_learners_afternoon(path):
    """The README's estimate (tools/learner_time.py): at most 2.5 hours per chapter, exercises
    and the run at learner defaults included. A chapter that grows past it should be split."""
    minutes = learner_time.estimate(path)
    assert minutes["exercises"] > 0 and minutes["reading"] > 0
    assert minutes["total"] <= learner_time.GOAL_MINUTES, minutes


def test_make_test_runs_beside_the_unit_tests_only_chapters_whose_claims_are_not_timings():
    split = {name: re.search(rf"^{name}\s*:=\s*(.*)$", MAKEFILE, re.M).group(1).split()
             for name in ("UNTIMED_CHAPTERS", "TIMED_CHAPTERS")}
    every = [path.name[:2] for path in NOTEBOOK_PATHS]
    assert sorted(split["UNTIMED_CHAPTERS"] + split["TIMED_CHAPTERS"]) == every
    # the words of the chapters' timing claims (01, 02, 03, 04, 06): measured against the clock
    timing = re.compile(r"\bfaster\b|slower than|images/s|FLOP/s|per second|outruns|costs more "
                        r"than|time per (epoch|step)|speedup", re.I)
    claims = {path.name[:2]: runner.claims_of(json.loads(path.read_text()))
              for path in NOTEBOOK_PATHS}
    for chapter in split["TIMED_CHAPTERS"]:
        assert any(timing.search(c["sentence"] + " " + " ".join(c["values"]))
                   for c in claims[chapter]), chapter  # the pattern knows each chapter's words
    for chapter in split["UNTIMED_CHAPTERS"]:
        for claim in claims[chapter]:
            assert not timing.search(claim["sentence"] + " " + " ".join(claim["values"])), (
                chapter, claim["sentence"])
