# fleetpatch images: one Dockerfile, one image per role, each with only its own cloud's SDK.
#   docker build --build-arg EXTRAS=gcp -t fleetpatch-gcp .
# EXTRAS names extras of pyproject.toml: orchestrator, aws, gcp, azure, vmware, ec2, api, tools.
# The local emulators (localclouds/) and moto never enter an image: the build context leaves
# localclouds/ and tests/ out (.dockerignore), and no production extra depends on moto.
ARG PYTHON_VERSION=3.11

# --- build: a wheel of fleetpatch, then a virtualenv with it and the role's extras -------------
FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS=orchestrator
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# .dockerignore lets in only pyproject.toml, README.md and the product packages.
COPY . .
RUN python -m venv /opt/fleetpatch \
    && /opt/fleetpatch/bin/pip install --upgrade pip \
    && /opt/fleetpatch/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/fleetpatch/bin/pip install "$(ls /wheels/fleetpatch-*.whl)[${EXTRAS}]"

# --- runtime: the virtualenv only, as an unprivileged user ------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ARG EXTRAS=orchestrator
LABEL org.opencontainers.image.title="fleetpatch-${EXTRAS}" \
      org.opencontainers.image.source="fleetpatch"
RUN useradd --system --create-home --uid 10001 --user-group fleetpatch
COPY --from=build /opt/fleetpatch /opt/fleetpatch
ENV PATH=/opt/fleetpatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLEETPATCH_LOG_FORMAT=json \
    FLEETPATCH_STATE_DIR=/tmp/fleetpatch \
    MALLOC_ARENA_MAX=2
WORKDIR /home/fleetpatch
USER 10001:10001
CMD ["python", "-m", "workers", "--role", "orchestrator"]
