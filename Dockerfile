# The monetise command line; `docker compose up` runs it as `monetise serve`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MONETISE_HOME=/var/lib/monetise

WORKDIR /src
# Only what the wheel is built from: no .dockerignore is needed to keep a local
# .venv, ./var (databases, API keys) or .git out of the image.
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY application ./application
COPY projections ./projections
COPY api ./api
COPY ingest ./ingest
RUN pip install . && rm -rf /src

# A fixed uid so that files mounted into the container (the API key file) can
# be made readable for it on the host.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/monetise \
        --create-home --shell /usr/sbin/nologin monetise
USER monetise
WORKDIR /var/lib/monetise

EXPOSE 8000
ENTRYPOINT ["monetise"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
