# The image docker-compose.yml builds: dropq installed with its optional parts, at the tested versions.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY dropq ./dropq
COPY cli ./cli
COPY config ./config
COPY dropcontact ./dropcontact
COPY examples ./examples
COPY tasks ./tasks
COPY workers ./workers
RUN pip install --no-cache-dir -c constraints.txt '.[postgres]'
USER nobody
CMD ["dropq", "worker"]
