"""moto's server with two gaps that make deploy and make destroy meet filled, each as AWS
documents it. Run as ``python -m tests.helpers.moto_server`` with moto.server's arguments.

* SageMaker's UpdateEndpoint, which moto answers with a 500, so a second deploy or a
  rollback of the embedder could not be applied: the endpoint takes the named
  configuration and that configuration's variants (capacities and serverless settings
  too: RetainAllVariantProperties is false by default, and Terraform never sets it).
* Emptying a versioned bucket (Terraform's force_destroy): moto fails the DeleteObjects
  of a key whose versions include a delete marker (FakeDeleteMarker has no ``dispose``),
  where S3 removes them all.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.s3.models import FakeDeleteMarker
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse


def update_endpoint(
    backend: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str
) -> FakeEndpoint:
    endpoint = backend.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, backend.account_id, backend.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    try:
        config = backend.describe_endpoint_config(endpoint_config_name)
    except KeyError:
        arn = FakeEndpointConfig.arn_formatter(
            endpoint_config_name, backend.account_id, backend.region_name
        )
        raise ValidationError(message=f"Could not find endpoint_config '{arn}'.") from None
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(
        config["ProductionVariants"]
    )
    endpoint.last_modified_time = utcnow()
    return endpoint


def _update_endpoint_response(self: Any) -> ActionResult:
    endpoint = update_endpoint(
        self.sagemaker_backend,
        self._get_param("EndpointName"),
        self._get_param("EndpointConfigName"),
    )
    return ActionResult({"EndpointArn": endpoint.arn})


def _dispose_nothing(self: Any, garbage: bool = False) -> None:
    """A delete marker holds no data to free."""


SageMakerResponse.update_endpoint = _update_endpoint_response  # type: ignore[attr-defined]
FakeDeleteMarker.dispose = _dispose_nothing  # type: ignore[attr-defined]

if __name__ == "__main__":
    from moto.server import main

    main()
