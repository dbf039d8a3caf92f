# The image docker-compose.yml builds: dropq installed with its optional parts, at the tested versions.
FROM python:3.11-slim
# The sources are built in /src and left there: run from /app, where no dropq/ folder of the
# checkout stands before the installed package on the import path (Celery puts the current folder first).
WORKDIR /src
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY dropq ./dropq
COPY cli ./cli
COPY config ./config
COPY dropcontact ./dropcontact
COPY examples ./examples
COPY tasks ./tasks
COPY workers ./workers
RUN pip install --no-cache-dir -c constraints.txt '.[postgres]' && mkdir -p /app/out && chown -R nobody /app
WORKDIR /app
USER nobody
CMD ["dropq", "worker"]
