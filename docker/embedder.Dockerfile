# syntax=docker/dockerfile:1
# The SageMaker inference container: `docker run IMAGE serve` answers /ping and
# /invocations on :8080. CPU torch only; the model's weights are downloaded here, at build
# time, so nothing is fetched at request time.
#   docker build -f docker/embedder.Dockerfile --build-arg MODEL_ID=facebook/dinov2-base .

FROM python:3.11.11-slim-bookworm AS build
ARG MODEL_ID=facebook/dinov2-base
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY src src
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu \
      -c requirements/constraints.txt ".[embedder]"
RUN /opt/venv/bin/photocluster bake-model "${MODEL_ID}" /opt/photocluster/model

FROM python:3.11.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin embedder
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/photocluster/model /opt/photocluster/model
COPY services/embedder/serve /opt/venv/bin/serve
ENV PATH=/opt/venv/bin:$PATH \
    PHOTOCLUSTER_MODEL=/opt/photocluster/model \
    PHOTOCLUSTER_HOST=0.0.0.0 \
    PHOTOCLUSTER_EMBEDDER_PORT=8080 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=4)"]
CMD ["serve"]
