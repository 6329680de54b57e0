# The Tether image (workers, the gateway, the keys job), used by docker-compose.yml. Scale the
# workers out: every replica polls the same task queue.
FROM python:3.12-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY tether ./tether
COPY workflows ./workflows
COPY activities ./activities
COPY worker.py ./
RUN pip install --no-cache-dir .

RUN useradd --create-home --uid 1000 tether && mkdir -p /var/lib/tether /var/lib/tether-keys \
    && chown tether /var/lib/tether /var/lib/tether-keys
USER tether
ENV TETHER_HOME=/var/lib/tether
CMD ["python", "worker.py"]
