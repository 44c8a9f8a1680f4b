# The course in a few commands. Everything runs in .venv, which `make setup` creates;
# every target below depends on it, so `make run` or `make test` on a fresh clone just works.

PYTHON      ?= python3
VENV        ?= .venv
TF_PACKAGE  ?= tensorflow-cpu==2.21.0
HOROVOD_GPU ?=
NOTEBOOKS   ?=
SUBMISSIONS ?=
TESTS       ?=
IMAGE       ?= dl-course
VARIANT     ?= cpu
PORT        ?= 8888
LAB_ARGS    ?=
BENCH_ARGS  ?=
RUN_ARGS    ?=
BACKEND     ?=
GRADE_ARGS  ?=
CHAPTER     ?=
GRADESCOPE_ARGS ?=
CLAIMS_ARGS ?=
UNIT_WORKERS ?= 2

BIN   := $(VENV)/bin
STAMP := $(VENV)/.setup-done
BACKENDS_STAMP := $(VENV)/.backends-done
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help setup backends data run test lint unit notebooks-test notebooks-test-untimed claims bench outputs student solved grade lab \
        gradescope-autograder docker-build docker-run repo-url clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml tools/setup_env.sh tools/build_horovod.sh tools/patches/*.patch
	PYTHON=$(PYTHON) TF_PACKAGE="$(TF_PACKAGE)" HOROVOD_GPU=$(HOROVOD_GPU) tools/setup_env.sh $(VENV)
	@touch $@

setup: $(STAMP) ## create .venv: pinned packages, utils, Horovod (built once, then cached)

$(BACKENDS_STAMP): $(STAMP) requirements-backends.txt
	$(BIN)/pip install -q -r requirements-backends.txt
	@touch $@

backends: $(BACKENDS_STAMP) ## add Keras' JAX and PyTorch backends to .venv (make run BACKEND=jax)

data: $(STAMP) ## fetch and verify MNIST into $COURSE_DATA_DIR (or ~/.cache/dl-course/data)
	$(BIN)/python -m utils.data

run: $(STAMP) $(if $(filter jax torch,$(BACKEND)),$(BACKENDS_STAMP)) ## execute every notebook headless into build/executed (NOTEBOOKS=01 02 for a subset, BACKEND=jax or torch)
	$(if $(BACKEND),KERAS_BACKEND=$(BACKEND)) $(BIN)/python -m utils.runner $(NOTEBOOKS) $(RUN_ARGS)

# Chapters whose claims are about accuracy and arithmetic, never about time: under `make test`
# their nbval run shares the machine with the unit tests; then the chapters that time matrix
# products, steps and epochs run alone. tests/test_repository.py keeps the split honest.
UNTIMED_CHAPTERS := 05 07
TIMED_CHAPTERS   := 01 02 03 04 06

test: lint ## lint; the unit tests beside the untimed chapters' nbval run; then the timed chapters alone
	$(MAKE) --no-print-directory -j2 --output-sync=target unit notebooks-test-untimed
	$(MAKE) --no-print-directory notebooks-test NOTEBOOKS="$(TIMED_CHAPTERS)"

notebooks-test-untimed:
	$(MAKE) --no-print-directory notebooks-test NOTEBOOKS="$(UNTIMED_CHAPTERS)"

lint: $(STAMP)
	$(BIN)/ruff check utils tests tools notebooks

unit: $(STAMP) $(BACKENDS_STAMP)
	$(BIN)/pytest tests -n $(UNIT_WORKERS) --dist loadfile --no-loadscope-reorder

notebooks-test: $(STAMP)
	DL_COURSE_CLAIMS=strict $(BIN)/pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -p no:cacheprovider \
	    $(if $(NOTEBOOKS),$(addprefix notebooks/,$(addsuffix *.ipynb,$(NOTEBOOKS))),notebooks)

claims: $(STAMP) ## run chapters under 3 seeds: in how many runs each claim held (docs/claims.md)
	$(BIN)/python tools/claims_sweep.py $(NOTEBOOKS) $(CLAIMS_ARGS)

bench: $(STAMP) ## measure times, throughput, Horovod scaling, grading, setup (build/bench.json)
	$(BIN)/python tools/bench.py $(BENCH_ARGS)

outputs: $(STAMP) ## maintainers: re-run notebooks and store their outputs in notebooks/
	$(BIN)/python -m utils.runner --update-sources $(NOTEBOOKS)

student: $(STAMP) ## write the handouts (no Solutions appendix, outputs cleared) to build/student
	$(BIN)/python -m utils.student $(NOTEBOOKS)

solved: $(STAMP) ## write the instructor's solved copies (solutions in the exercise cells) to build/solved
	$(BIN)/python -m utils.student --solved $(NOTEBOOKS)

grade: $(STAMP) ## grade a folder of submissions: make grade SUBMISSIONS=folder [TESTS=folder]
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=path/to/folder [TESTS=path]"; exit 2; }
	$(BIN)/python -m utils.grading "$(SUBMISSIONS)" $(if $(TESTS),--tests "$(TESTS)") $(GRADE_ARGS)

gradescope-autograder: $(STAMP) ## build a chapter's Gradescope autograder zip: make gradescope-autograder CHAPTER=01
	@test -n "$(CHAPTER)" || { echo "usage: make gradescope-autograder CHAPTER=01 [TESTS=path] [GRADESCOPE_ARGS=--force]"; exit 2; }
	$(BIN)/python -m utils.grading.exports gradescope "$(CHAPTER)" $(if $(TESTS),--tests "$(TESTS)") $(GRADESCOPE_ARGS)

lab: $(STAMP) ## start JupyterLab in the course environment
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

docker-build: ## build the container (VARIANT=cpu or gpu); needs a Docker engine
	docker build --build-arg VARIANT=$(VARIANT) -t $(IMAGE):$(VARIANT) .

docker-run: ## serve JupyterLab from the container on port $(PORT) (token printed in the log)
	docker run --rm -it -p $(PORT):8888 $(if $(filter gpu,$(VARIANT)),--gpus all) $(IMAGE):$(VARIANT)

repo-url: ## point every copy of the course's URL at a fork: make repo-url URL=https://github.com/you/dl-course
	@test -n "$(URL)" || { echo "usage: make repo-url URL=https://github.com/owner/name"; exit 2; }
	python3 tools/repo_url.py --set "$(URL)"

clean: ## remove build outputs (keeps .venv and the data cache)
	rm -rf build
