# The one image of the product: web, worker, beat and the GPU embedding worker run it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DATA_DIR=/data
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
