# The operator image the Helm chart runs: `corral run` as a non-root user on a read-only root
# filesystem. Two stages: the build stage installs Corral and its dependencies into a virtual
# environment; the runtime stage is the slim Python base plus that environment, nothing else.
#   docker build -t registry.example.com/corral:0.1.0 .     (or `buildah bud`, `podman build`)
# PYTHON_IMAGE must be the same image in both stages (the environment links to its python3).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/corral
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# The local-fleet tooling (`corral fleet`: builds control planes for tests) is not the operator's:
# it stays out of the wheel, and `corral fleet` says so in one line in this image.
RUN rm -rf operator/corral/localfleet \
    && /opt/corral/bin/pip install . \
    && /opt/corral/bin/corral --version \
    && ! /opt/corral/bin/python -c "import corral.localfleet" 2>/dev/null

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/corral /opt/corral
# Bytecode was compiled at install time; nothing is written at run time (read-only root).
ENV PATH=/opt/corral/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# A numeric user, so `runAsNonRoot` can be verified. It also gets a passwd entry: kopf names
# itself after the user (getpass.getuser) unless POD_ID is set, as the chart does.
RUN echo 'corral:x:65532:65532:corral:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'corral:x:65532:' >> /etc/group
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["corral"]
CMD ["run"]
