# syntax=docker/dockerfile:1
# One image for every component: `servicegroup manager | proxy | dns | sandbox ...`.
# Build:  docker build -t servicegroup:0.1.0 .
# Runs as uid/gid 65532 with a read-only root filesystem (nothing is written at run time; the
# bytecode is compiled at build time and PYTHONDONTWRITEBYTECODE stops any later writes).

# Release builds pin the digest too: --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/servicegroup
COPY pyproject.toml README.md ./
COPY src ./src
# The wheel's dependencies are pinned (==) in pyproject.toml.
RUN /opt/servicegroup/bin/pip install --no-compile . \
    && /opt/servicegroup/bin/python -m compileall -q /opt/servicegroup/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="servicegroup" \
      org.opencontainers.image.description="SuperEdge ServiceGroup for any Kubernetes cluster" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/servicegroup/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/servicegroup /opt/servicegroup
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["servicegroup"]
CMD ["--help"]
