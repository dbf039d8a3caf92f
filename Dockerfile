# The image docker-compose.yml builds: dropq installed with its optional parts.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY dropcontact ./dropcontact
COPY workers ./workers
COPY tasks ./tasks
COPY examples ./examples
RUN pip install --no-cache-dir '.[postgres]'
USER nobody
CMD ["dropq", "worker"]
