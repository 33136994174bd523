# xpbank worker image: `docker build -t xpbank:latest .` (deploy/docker-compose.yml builds it too).
#   docker run xpbank:latest                   -> xpbank worker
#   docker run xpbank:latest topics create     -> any other subcommand
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The package and its pinned dependencies from pyproject.toml (README.md is its readme).
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
 && groupadd --system --gid 10001 xpbank \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app xpbank \
 && mkdir -p /data \
 && chown 10001:10001 /data

# Local table stores (rocksdb); mount a persistent volume here.
ENV XPBANK_DATA_DIR=/data
VOLUME ["/data"]
# The worker's HTTP port (XPBANK_WEB_PORT): /healthz and the API; the gateway's
# (XPBANK_GATEWAY_PORT, `xpbank gateway`).
EXPOSE 6066 6070

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001
ENTRYPOINT ["xpbank"]
CMD ["worker"]
