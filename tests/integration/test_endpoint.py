"""Endpoint clients over real HTTP: throttling is retried with bounded backoff, a bad
input is rejected without retries, on both the plain-HTTP and the SageMaker path."""

from __future__ import annotations

import boto3
import pytest

from photocluster.errors import EndpointRejected, EndpointThrottled
from photocluster.ingest.endpoint import (
    HttpEndpoint,
    RetryPolicy,
    SageMakerEndpoint,
    sagemaker_client,
)
from tests.conftest import TINY_VIT_ID
from tests.helpers.aws import aws_env
from tests.helpers.images import jpeg, png, truncated_jpeg
from tests.helpers.throttle import ThrottlingProxy


def policy(sleeps: list[float], attempts: int = 5) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_s=0.01, cap_s=0.05, sleep=sleeps.append)


def sagemaker(
    url: str, sleeps: list[float], monkeypatch: pytest.MonkeyPatch, attempts: int = 5
) -> SageMakerEndpoint:
    for key, value in aws_env(url).items():
        monkeypatch.setenv(key, value)
    return SageMakerEndpoint(
        "photocluster-embedder", sagemaker_client(30), policy(sleeps, attempts)
    )


def test_http_throttled_twice_then_succeeds(tiny_embedder: str) -> None:
    sleeps: list[float] = []
    with ThrottlingProxy(tiny_embedder, throttle=2) as proxy:
        batch = HttpEndpoint(proxy.url, policy(sleeps)).embed([jpeg(1), png(2)])
    assert proxy.requests == 3
    assert len(sleeps) == 2 and all(0 <= s <= 0.05 for s in sleeps)
    assert batch.model == TINY_VIT_ID and batch.vectors.shape == (2, 32)


def test_sagemaker_throttled_twice_then_succeeds(
    tiny_embedder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    with ThrottlingProxy(tiny_embedder, throttle=2) as proxy:
        batch = sagemaker(proxy.url, sleeps, monkeypatch).embed([jpeg(1)])
    assert proxy.requests == 3  # botocore's own retries are off: every attempt is ours
    assert batch.vectors.shape == (1, 32)


@pytest.mark.parametrize("path", ["http", "sagemaker"])
def test_attempts_are_bounded(
    tiny_embedder: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    with ThrottlingProxy(tiny_embedder, throttle=1000) as proxy:
        endpoint = (
            HttpEndpoint(proxy.url, policy(sleeps, 4))
            if path == "http"
            else sagemaker(proxy.url, sleeps, monkeypatch, 4)
        )
        with pytest.raises(EndpointThrottled):
            endpoint.embed([jpeg(1)])
    assert proxy.requests == 4 and len(sleeps) == 3


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    import random

    policy = RetryPolicy(max_attempts=6, base_s=1.0, cap_s=8.0, rng=random.Random(0))
    caps = [min(8.0, 2**n) for n in range(5)]
    delays = []
    policy.sleep = delays.append

    def always() -> None:
        from photocluster.ingest.endpoint import _Retry

        raise _Retry(EndpointThrottled("busy"))

    with pytest.raises(EndpointThrottled):
        policy.run(always)
    assert len(delays) == 5 and all(0 <= d <= c for d, c in zip(delays, caps, strict=True))


@pytest.mark.parametrize("path", ["http", "sagemaker"])
def test_a_bad_image_is_rejected_once_naming_the_instance(
    tiny_embedder: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    with ThrottlingProxy(tiny_embedder, throttle=0) as proxy:
        endpoint = (
            HttpEndpoint(proxy.url, policy(sleeps))
            if path == "http"
            else sagemaker(proxy.url, sleeps, monkeypatch)
        )
        with pytest.raises(EndpointRejected) as caught:
            endpoint.embed([jpeg(1), truncated_jpeg()])
    assert caught.value.instance == 1 and "truncated" in str(caught.value)
    assert proxy.requests == 1 and sleeps == []


def test_region_and_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in aws_env("http://127.0.0.1:9").items():
        monkeypatch.setenv(key, value)
    assert boto3.client("sagemaker-runtime").meta.region_name == "us-east-1"
