"""What each photo costs in CPU, by stage, and the metrics that carry it to CloudWatch.

Every stage is timed in CPU milliseconds of the thread that ran it (``time.thread_time``:
a wait on S3 or on the endpoint costs nothing), summed over a batch's photos and threads:

* ingest: ``download`` (S3's GetObject, the client's side), ``decode`` (decode, shrink,
  re-encode for the endpoint), ``features`` (the photo's ORB features), ``embed_request``
  (the endpoint call, the client's side: base64, JSON), ``write_request`` (the writer
  call, the client's side);
* the embedding endpoint, as it reports in its answer: ``embedder`` (decode and forward
  pass; the forward pass counted in all of its threads);
* the writer, as it reports in its answer: ``copy_check`` (the geometric check), ``graph``
  (the similarity graph's update), ``store`` (the rest of its write: the store, records).

Each invocation ends with one EMF record (Powertools metrics, printed with the logs,
read by CloudWatch without an API call): ``<Stage>CpuMs`` per stage and ``Photos``, so a
dashboard divides one by the other; README, Sizing turns them into dollars.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from photocluster.cpu import StageCpu

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import EphemeralMetrics

NAMESPACE = "photocluster"
INGEST_STAGES = ("download", "decode", "features", "embed_request", "write_request")
ENDPOINT_STAGES = ("embedder",)
WRITER_STAGES = ("copy_check", "graph", "store")
STAGES = INGEST_STAGES + ENDPOINT_STAGES + WRITER_STAGES


def metric_name(stage: str) -> str:
    """``copy_check`` -> ``CopyCheckCpuMs``."""
    return "".join(part.capitalize() for part in stage.split("_")) + "CpuMs"


def emit(metrics: EphemeralMetrics, spent: StageCpu, photos: int) -> None:
    """One invocation's EMF record: each stage's CPU-ms, and the photos they were for.
    ``metrics``: a Powertools ``EphemeralMetrics`` (several pollers of the local worker
    share a process; the shared ``Metrics`` would mix their records)."""
    from aws_lambda_powertools.metrics import MetricUnit

    for name, ms in sorted(spent.ms.items()):
        metrics.add_metric(name=metric_name(name), unit=MetricUnit.Milliseconds, value=round(ms, 3))
    metrics.add_metric(name="Photos", unit=MetricUnit.Count, value=photos)
    record = metrics.serialize_metric_set()
    metrics.clear_metrics()
    # One write of the whole line: Powertools' flush prints the record and its newline
    # apart, and the local worker's pollers share one stdout (in Lambda each has its own).
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()
