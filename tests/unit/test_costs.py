"""Each photo's CPU by stage: timed in the threads that ran it, merged from what the
endpoint and the writer report, and written as one EMF record per invocation."""

from __future__ import annotations

import json
import threading
import time

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics

from photocluster.cpu import StageCpu
from photocluster.ingest.costs import NAMESPACE, emit, metric_name


def test_a_stage_counts_cpu_not_waiting_and_reports_merge_only_numbers() -> None:
    spent = StageCpu()
    with spent.stage("decode"):
        time.sleep(0.05)  # waiting costs nothing
    with spent.stage("decode"):
        sum(i * i for i in range(200_000))
    assert 0 < spent.ms["decode"] < 50
    added = spent.merge(
        {"copy_check": 3.5, "graph": "x", "store": True, "other": 9},
        ("copy_check", "graph", "store"),
    )
    assert added == 3.5 and spent.ms == {"decode": spent.ms["decode"], "copy_check": 3.5}
    assert metric_name("copy_check") == "CopyCheckCpuMs"


def test_pollers_sharing_stdout_each_write_whole_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The local worker's pollers emit at once into one stdout: every line is one record."""

    def invocation(index: int) -> None:
        metrics = EphemeralMetrics(namespace=NAMESPACE, service="photocluster-ingest")
        for _ in range(20):
            spent = StageCpu({"decode": float(index), "embedder": 2.0})
            emit(metrics, spent, photos=10)

    threads = [threading.Thread(target=invocation, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 80
    for record in records:
        names = {m["Name"] for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert names == {"DecodeCpuMs", "EmbedderCpuMs", "Photos"} and record["Photos"] in (
            10,
            [10.0],
            10.0,
        )
