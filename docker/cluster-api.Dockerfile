# syntax=docker/dockerfile:1
# The cluster API Lambda: API Gateway -> Mangum -> FastAPI (photocluster.api).
# Only the `api` extra: no torch, no transformers.
#   docker build -f docker/cluster-api.Dockerfile -t photocluster-cluster-api .

FROM public.ecr.aws/lambda/python:3.11
# checkov:skip=CKV_DOCKER_2: Lambda ignores HEALTHCHECK; the service itself manages runtime health
COPY requirements/constraints.txt /tmp/build/requirements/constraints.txt
COPY pyproject.toml README.md /tmp/build/
# Not photocluster.quality: evaluation and calibration are tools no service imports
# (issue 32; import-linter's contract in pyproject.toml). --exclude: syntax 1.19+.
COPY --exclude=photocluster/quality src /tmp/build/src
RUN pip install --no-cache-dir -c /tmp/build/requirements/constraints.txt \
      --target "${LAMBDA_TASK_ROOT}" "/tmp/build[api]" \
 && rm -rf /tmp/build
COPY services/cluster-api/handler.py ${LAMBDA_TASK_ROOT}/
ENV PHOTOCLUSTER_AUTH_MODE=apigateway
# EFS mounts here in Lambda; locally (compose) a named volume does, owned by this user.
RUN mkdir -p /mnt/efs && chown 1000:1000 /mnt/efs
USER 1000:1000
CMD ["handler.handler"]
