"""A real HTTP server in front of the embedder that throttles the first N requests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.helpers.procs import free_port


class ThrottlingProxy:
    """Answers the first ``throttle`` requests with 429 (plain HTTP) or a SageMaker
    ThrottlingException (at /endpoints/...), then forwards to ``upstream``."""

    def __init__(self, upstream: str, throttle: int) -> None:
        self.upstream = upstream
        self.throttle = throttle
        self.requests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    proxy.requests += 1
                    throttled = proxy.requests <= proxy.throttle
                sagemaker = self.path.startswith("/endpoints/")
                if throttled:
                    headers: dict[str, Any] = {"Content-Type": "application/json"}
                    if sagemaker:
                        headers["x-amzn-ErrorType"] = "ThrottlingException"
                        self._send(400, json.dumps({"message": "Rate exceeded"}).encode(), headers)
                    else:
                        self._send(429, b'{"error": "slow down"}', headers)
                    return
                answer = httpx.post(
                    proxy.upstream + self.path,
                    content=body,
                    timeout=60,
                    headers={"Content-Type": self.headers["Content-Type"]},
                )
                self._send(
                    answer.status_code,
                    answer.content,
                    {"Content-Type": answer.headers.get("content-type", "")}
                    | {k: v for k, v in answer.headers.items() if k.lower() == "x-amzn-errortype"},
                )

            def _send(self, status: int, body: bytes, headers: dict[str, Any]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
