# minitube: one aiohttp process; PostgreSQL and Redis run beside it (docker-compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MINITUBE_STORAGE_DIR=/data/storage \
    PORT=8080

WORKDIR /app
RUN useradd --system --create-home --uid 10001 minitube \
    && mkdir -p /data/storage && chown -R minitube /data

COPY pyproject.toml setup.cfg README.md ./
COPY minitube ./minitube
COPY frontend ./frontend
COPY migrations ./migrations
RUN pip install --no-cache-dir -e .

USER minitube
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"
CMD ["python", "-m", "minitube", "serve"]
