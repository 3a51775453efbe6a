# syntax=docker/dockerfile:1.7
# The jetstream image: the CLI and its dependencies, nothing else. Every pod (controller,
# tasks, webhook) runs `jetstream <command>`. Build: docker build -t jetstream .
# Deploy it pinned by digest (NAME@sha256:...): the Argo runner refuses tags.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# -- build: the project wheel and the wheels of every dependency -------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY jetstream ./jetstream
RUN pip wheel --wheel-dir /dist ".[all]"

# -- runtime: install the wheels, drop pip, run as an unprivileged user ------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="jetstream" \
      org.opencontainers.image.description="Experiment analysis: metric-hub configs in, statistics JSON out." \
      org.opencontainers.image.licenses="MPL-2.0"
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JETSTREAM_LOG_FORMAT=json
# git: the webhook fetches the config repository; ca-certificates: HTTPS to GitHub and GCP.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
# The wheels are bind-mounted from the build stage: no layer of this image holds them.
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    pip install --no-index --find-links /dist "jetstream-platform[all]" \
    && pip uninstall -y pip setuptools wheel \
    && rm -rf /root/.cache
RUN groupadd --system --gid 10001 jetstream \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/jetstream --create-home \
       --shell /usr/sbin/nologin jetstream
USER 10001:10001
WORKDIR /home/jetstream
ENTRYPOINT ["jetstream"]
CMD ["--help"]
