# syntax=docker/dockerfile:1.7
# The jetstream image: the CLI and its dependencies, nothing else. Every pod (controller,
# tasks, webhook) runs `jetstream <command>`. Build: docker build -t jetstream .
# Deploy it pinned by digest (NAME@sha256:...): the Argo runner refuses tags.
#
# Supply chain: the base image is pinned by digest (see docs/deployment.md, "Updating the
# pins", for where the digest comes from and how to refresh it), and every Python package
# is installed from requirements/image.txt with --require-hashes (pip-compile
# --generate-hashes from pyproject.toml): a changed or substituted file on the index fails
# the build.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# -- build: the project wheel and the hash-checked wheels of every dependency ------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements ./requirements
# Dependencies: PyPI's own wheels only (no sdist is built here), each checked against the
# lock file, so the runtime stage can check the very same hashes again.
RUN pip wheel --require-hashes --no-deps --only-binary=:all: --wheel-dir /dist \
        -r requirements/image.txt \
    && cp requirements/image.txt /dist/requirements.txt
# The project: built without build isolation by a hash-checked setuptools.
RUN pip install --require-hashes --no-deps -r requirements/build.txt
COPY pyproject.toml README.md ./
COPY jetstream ./jetstream
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /dist/project .

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
# git: the webhook and the daily controller fetch the config repository; ca-certificates:
# HTTPS to GitHub and GCP.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
# The wheels are bind-mounted from the build stage: no layer of this image holds them.
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    pip install --no-index --find-links /dist --require-hashes --no-deps \
        -r /dist/requirements.txt \
    && pip install --no-index --no-deps /dist/project/jetstream_platform-*.whl \
    && pip uninstall -y pip setuptools wheel \
    && rm -rf /root/.cache
RUN groupadd --system --gid 10001 jetstream \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/jetstream --create-home \
       --shell /usr/sbin/nologin jetstream
USER 10001:10001
WORKDIR /home/jetstream
ENTRYPOINT ["jetstream"]
CMD ["--help"]
