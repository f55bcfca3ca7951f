# syntax=docker/dockerfile:1
# The SageMaker inference container: `docker run IMAGE serve` answers /ping and
# /invocations on :8080. The model's weights are downloaded and exported to ONNX (fp32 and
# int8) here, at build time, so nothing is fetched at request time, and the model's tiers
# are calibrated on the generated evaluation sets (calibration.json beside the weights,
# reported by /ping and /invocations, persisted by the writer). bake-model's fidelity gate
# picks the runtime that serves (runtime.json: onnx-int8 where its vectors agree with
# torch's on the machine that builds, else onnx fp32); the local stack and the demo serve
# the same way. The build stage bakes with CPU torch; the served image runs the ONNX
# export with onnxruntime and carries no torch (1,274 -> 349 MiB of installed packages).
# SERVE_EXTRA=embedder keeps torch in, for a model the gate leaves on torch.
#   docker build -f docker/embedder.Dockerfile --build-arg MODEL_ID=facebook/dinov2-base .

FROM python:3.11.11-slim-bookworm AS build
ARG MODEL_ID=facebook/dinov2-base
ARG SERVE_EXTRA=embedder-serve
# The generated sets the tiers are calibrated on (bake-model --calibration-seeds).
ARG CALIBRATION_SEEDS=0,1,2
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY src src
# The bake venv: torch + transformers to export, and the quality tools (quality extra:
# scikit-image, scikit-learn for the sample photos) that set EfficientNet-Lite0's int8
# activation ranges and make the calibration sets. Not copied into the served image.
RUN python -m venv /opt/bake \
 && /opt/bake/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu \
      -c requirements/constraints.txt ".[embedder,quality]"
RUN /opt/bake/bin/photocluster bake-model "${MODEL_ID}" /opt/photocluster/model \
      --calibration-seeds "${CALIBRATION_SEEDS}" --quiet
# A model the gate leaves on torch cannot be served from a venv without it: say so here.
RUN /opt/bake/bin/python -c "import json, sys; runtime = json.load(open('/opt/photocluster/model/runtime.json'))['runtime']; sys.exit(runtime == 'torch' and '${SERVE_EXTRA}' != 'embedder' and 'the fidelity gate chose torch: build with --build-arg SERVE_EXTRA=embedder')"
# The served venv is installed from its own copy of the sources, without
# photocluster.quality (the bake's tools: the server never imports them, issue 32). Not
# from /src: setuptools' build/ folder there still holds the bake's quality modules.
# (COPY --exclude: Dockerfile syntax 1.19+, which docker/dockerfile:1 is.)
WORKDIR /serve
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY --exclude=photocluster/quality src src
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu \
      -c requirements/constraints.txt ".[${SERVE_EXTRA}]"

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
