"""Cluster API Lambda: API Gateway proxy events -> FastAPI (photocluster.api) via Mangum.

Everything heavy (FastAPI, numpy, scipy, the app and its store handle) loads here, at init,
so provisioned-concurrency instances answer their first request warm.
"""

from __future__ import annotations

from mangum import Mangum

from photocluster.api import get_app

handler = Mangum(get_app(), lifespan="off")
