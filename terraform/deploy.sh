#!/usr/bin/env bash
# make deploy: create the ECR repositories, build and push the three images, apply the rest.
# Needs: AWS credentials (any method the AWS CLI accepts), AWS_REGION, Docker, Terraform,
# the AWS CLI, and terraform.tfvars (copy terraform.tfvars.example).
set -euo pipefail
cd "$(dirname "$0")"

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
[ -n "$REGION" ] || { echo "set AWS_REGION (e.g. eu-west-1)" >&2; exit 2; }
TFVARS="${TFVARS:-terraform.tfvars}"
[ -f "$TFVARS" ] || { echo "copy terraform.tfvars.example to $TFVARS and edit it" >&2; exit 2; }
for tool in aws docker terraform git; do
  command -v "$tool" >/dev/null || { echo "$tool is required for make deploy" >&2; exit 2; }
done

TAG="${IMAGE_TAG:-$(git rev-parse --short=12 HEAD)}"
if ! git diff --quiet HEAD -- ../src ../services ../docker ../pyproject.toml; then
  TAG="$TAG-dirty-$(date +%s)"  # repositories are immutable: never reuse a tag for other bits
fi
PLACEHOLDER=(-var "ingest_image_uri=pending" -var "cluster_api_image_uri=pending"
             -var "embedder_image_uri=pending")

terraform init -input=false
NAME=$(echo 'local.name' | terraform console -var-file="$TFVARS" "${PLACEHOLDER[@]}" | tr -d '"')
MODEL_ID=$(echo 'var.model_id' | terraform console -var-file="$TFVARS" "${PLACEHOLDER[@]}" | tr -d '"')

echo "== 1/3 ECR repositories for $NAME"
terraform apply -input=false -auto-approve -var-file="$TFVARS" "${PLACEHOLDER[@]}" \
  -target=module.ingest.aws_ecr_repository.this \
  -target=module.cluster_api.aws_ecr_repository.this \
  -target=module.embedder.aws_ecr_repository.this

ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
REGISTRY="$ACCOUNT.dkr.ecr.$REGION.amazonaws.com"
aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "$REGISTRY"

echo "== 2/3 images ($TAG; embedder model $MODEL_ID)"
build_and_push() {  # dockerfile, repository, extra docker build args...
  local dockerfile=$1 repository=$2; shift 2
  local uri="$REGISTRY/$repository:$TAG"
  # Lambda and SageMaker run linux/amd64 and reject manifest lists with attestations.
  docker build --platform linux/amd64 --provenance=false -f "../docker/$dockerfile" -t "$uri" "$@" .. >&2
  docker push "$uri" >&2
  echo "$uri"
}
INGEST=$(build_and_push ingest.Dockerfile "$NAME-ingest")
API=$(build_and_push cluster-api.Dockerfile "$NAME-cluster-api")
EMBEDDER=$(build_and_push embedder.Dockerfile "$NAME-embedder" --build-arg "MODEL_ID=$MODEL_ID")

echo "== 3/3 terraform apply"
terraform apply -input=false -var-file="$TFVARS" -var "ingest_image_uri=$INGEST" \
  -var "cluster_api_image_uri=$API" -var "embedder_image_uri=$EMBEDDER"
echo "API: $(terraform output -raw api_url)"
