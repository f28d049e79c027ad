# One image for every fleetpatch role; the command picks the role.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 fleetpatch
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts contracts
COPY config config
COPY clouds clouds
COPY localclouds localclouds
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY clients clients
COPY scheduling scheduling
RUN pip install --no-cache-dir .
USER fleetpatch
ENV FLEETPATCH_LOG_FORMAT=json
CMD ["python", "-m", "workers", "--role", "orchestrator"]
