# bayesmmm REST service (`bayesmmm serve`) on Python 3.12 slim, as a non-root user.
#
#   docker build -t bayesmmm-serve .
#   docker run --rm -p 127.0.0.1:8000:8000 -v "$PWD/registry:/registry:ro" bayesmmm-serve /registry --model sales
#
# Dependencies are pinned by requirements-serve.lock (`pip freeze` of a fresh venv with
# `pip install .[serve]`; regenerate it when pyproject.toml changes). See compose.yaml.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    NUMBA_CACHE_DIR=/tmp/numba \
    PYTENSOR_FLAGS=base_compiledir=/tmp/pytensor

RUN groupadd --system --gid 10001 bayesmmm \
    && useradd --system --uid 10001 --gid bayesmmm --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin bayesmmm

WORKDIR /app
COPY requirements-serve.lock ./
RUN pip install -r requirements-serve.lock
COPY pyproject.toml README.md ./
COPY bayesmmm ./bayesmmm
RUN pip install --no-deps . \
    && python -c "import bayesmmm.serving.app, bayesmmm.cli" \
    && rm -rf /app/bayesmmm /app/build

USER bayesmmm:bayesmmm
EXPOSE 8000
# start-up loads the posterior and renders the dashboard: allow it a minute or two
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]

# 0.0.0.0 only inside the container, where the port is reached through Docker's mapping;
# set BAYESMMM_API_TOKEN to require a bearer token on everything but /health and the docs, and
# BAYESMMM_ALLOWED_HOSTS to the names a proxy forwards (default: localhost, 127.0.0.1, ::1).
# A `promote` in the mounted registry is picked up by the running server; `docker kill -s HUP`
# reloads at once. Optimizations run in a spawned worker process (one more copy of the model).
ENTRYPOINT ["bayesmmm", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["/registry"]
