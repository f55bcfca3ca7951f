# syntax=docker/dockerfile:1
# One image, two Lambda functions: ingest (SQS -> SageMaker -> writer) and writer (EFS).
# Terraform sets image_config.command to handler.handler or writer.handler.
# Only the `ingest` extra: no torch, no transformers; OpenCV (headless) for the geometric check.
#   docker build -f docker/ingest.Dockerfile -t photocluster-ingest .

FROM public.ecr.aws/lambda/python:3.11
# checkov:skip=CKV_DOCKER_2: Lambda ignores HEALTHCHECK; the service itself manages runtime health
COPY requirements/constraints.txt /tmp/build/requirements/constraints.txt
COPY pyproject.toml README.md /tmp/build/
# Not photocluster.quality: evaluation and calibration are tools no service imports
# (issue 32; import-linter's contract in pyproject.toml). --exclude: syntax 1.19+.
COPY --exclude=photocluster/quality src /tmp/build/src
RUN pip install --no-cache-dir -c /tmp/build/requirements/constraints.txt \
      --target "${LAMBDA_TASK_ROOT}" "/tmp/build[ingest]" \
 && rm -rf /tmp/build
COPY services/ingest/handler.py services/ingest/writer.py ${LAMBDA_TASK_ROOT}/
# EFS mounts here in Lambda; locally (compose) a named volume does, owned by this user.
RUN mkdir -p /mnt/efs && chown 1000:1000 /mnt/efs
USER 1000:1000
CMD ["handler.handler"]
