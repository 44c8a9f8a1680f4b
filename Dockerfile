# The course in a container, built through the same `make setup` as everywhere else, serving
# JupyterLab on port 8888 with token authentication (the token is printed in the log).
#   CPU (default): docker build -t dl-course:cpu .            (or: make docker-build)
#   GPU:           docker build --build-arg VARIANT=gpu -t dl-course:gpu .
#                  (TensorFlow's CUDA build, Horovod compiled with NCCL; run with --gpus all)
# Podman 4.3 / Buildah 1.28 (Debian 12) ignore the default of VARIANT in `FROM base-${VARIANT}`
# (buildah issue #4312): pass --build-arg VARIANT=cpu there, as `make docker-build` does.
ARG VARIANT=cpu

FROM python:3.11.11-slim-bookworm AS base-cpu
ENV TF_PACKAGE=tensorflow-cpu==2.21.0 HOROVOD_GPU=
RUN apt-get update && apt-get install -y --no-install-recommends g++ make patch git \
    && rm -rf /var/lib/apt/lists/*

FROM nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04 AS base-gpu
ENV TF_PACKAGE="tensorflow[and-cuda]==2.21.0" HOROVOD_GPU=NCCL
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev g++ make patch git libnccl2 libnccl-dev \
    && rm -rf /var/lib/apt/lists/* \
    && (userdel -r ubuntu 2>/dev/null || true)

FROM base-${VARIANT}
RUN useradd --create-home --uid 1000 --shell /bin/bash learner
USER learner
WORKDIR /home/learner/course
COPY --chown=learner:learner . .
ENV COURSE_DATA_DIR=/home/learner/data TF_CPP_MIN_LOG_LEVEL=2
# The same setup path as `make setup` on a laptop or a cluster; MNIST is baked into the image
# (COURSE_DATA_DIR) so the container also works offline. pip's cache and the built Horovod
# wheel's cache (about 15 MB; it only speeds up a second `make setup`) are removed in this same
# step: removed in a later one, they would still be stored in this layer.
RUN make setup PYTHON=python3 TF_PACKAGE="$TF_PACKAGE" HOROVOD_GPU="$HOROVOD_GPU" \
    && make data \
    && rm -rf /home/learner/.cache/pip /home/learner/.cache/dl-course/wheels
# The course's Python first in a shell (`docker exec`, JupyterLab's terminal): `python`,
# `horovodrun -np 2 ... python script.py` and `pytest` are the venv's.
ENV PATH=/home/learner/course/.venv/bin:$PATH
EXPOSE 8888
CMD ["make", "lab", "LAB_ARGS=--ip=0.0.0.0 --port=8888 --no-browser"]
