# The operator image the Helm chart runs. Not built in this repository's CI (no container engine
# there); `docker build -t ghcr.io/corral-dev/corral:0.1.0 .` builds it.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && rm -rf /root/.cache
USER 65532:65532
ENTRYPOINT ["corral"]
CMD ["run"]
