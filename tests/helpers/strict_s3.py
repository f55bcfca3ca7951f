"""An S3 double that checks presigned URLs the way S3 does (moto checks none).

It takes PUTs of presigned URLs (SigV4 query authentication) and nothing else: a request
without a signature, with one that does not match the method, path, query or signed
headers it arrived with, or past its expiry is refused with S3's error code. The
signature is recomputed here from the request as received (an implementation of its own,
checked against AWS's published example), so a test through it shows what a ticket binds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALGORITHM = "AWS4-HMAC-SHA256"
_MAX_EXPIRES_S = 604_800  # S3's limit on X-Amz-Expires: seven days


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _encode(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), date)
    return _hmac(_hmac(_hmac(key, region), service), "aws4_request")


def refusal(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    secrets: Mapping[str, str],
    now: datetime,
) -> tuple[str, str] | None:
    """Why S3 would refuse this presigned request (code, message), or None to accept it.
    ``headers`` maps lower-case names to values as received."""
    params = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
    given = dict(params)
    if given.get("X-Amz-Algorithm") != ALGORITHM or "X-Amz-Signature" not in given:
        return "AccessDenied", "no SigV4 query signature"
    try:
        access_key, date, region, service, terminal = given["X-Amz-Credential"].split("/")
        signed_at = datetime.strptime(given["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(given["X-Amz-Expires"])
        signed_names = given["X-Amz-SignedHeaders"].split(";")
    except (KeyError, ValueError):
        return "AuthorizationQueryParametersError", "malformed query authentication"
    if access_key not in secrets:
        return "InvalidAccessKeyId", "unknown access key"
    if not 1 <= expires <= _MAX_EXPIRES_S:
        return "AuthorizationQueryParametersError", "X-Amz-Expires out of range"
    if now > signed_at + timedelta(seconds=expires):
        return "AccessDenied", "Request has expired"
    if "host" not in signed_names or any(name not in headers for name in signed_names):
        return "SignatureDoesNotMatch", "a signed header is missing"
    query = "&".join(
        f"{_encode(k)}={_encode(v)}" for k, v in sorted(params) if k != "X-Amz-Signature"
    )
    canonical_headers = "".join(
        f"{name}:{re.sub(r' +', ' ', headers[name].strip())}\n" for name in signed_names
    )
    canonical = "\n".join(
        [method, raw_path, query, canonical_headers, ";".join(signed_names), "UNSIGNED-PAYLOAD"]
    )
    scope = f"{date}/{region}/{service}/{terminal}"
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    to_sign = f"{ALGORITHM}\n{given['X-Amz-Date']}\n{scope}\n{digest}"
    key = signing_key(secrets[access_key], date, region, service)
    expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given["X-Amz-Signature"]):
        return "SignatureDoesNotMatch", "the signature does not match the request"
    return None


@dataclass
class StrictS3:
    """Objects put through presigned URLs, by ``bucket/key``; every refusal, in order."""

    secrets: dict[str, str]
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        s3 = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, code: str = "", message: str = "") -> None:
                body = (
                    f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
                    if code
                    else b""
                )
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _any(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                refused = refusal(self.command, path, query, headers, s3.secrets, datetime.now(UTC))
                if refused is None and self.command != "PUT":
                    refused = ("MethodNotAllowed", "this double takes presigned PUTs only")
                if refused is not None:
                    s3.refusals.append(refused[0])
                    self._answer(405 if refused[0] == "MethodNotAllowed" else 403, *refused)
                    return
                name = urllib.parse.unquote(path.lstrip("/"))
                s3.objects[name] = (body, headers.get("content-type", ""))
                self._answer(200)

            do_PUT = do_GET = do_POST = do_DELETE = _any  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextmanager
def strict_s3(secrets: dict[str, str]) -> Iterator[StrictS3]:
    """The double, listening on a free loopback port (path-style URLs: /bucket/key)."""
    s3 = StrictS3(secrets)
    server = ThreadingHTTPServer(("127.0.0.1", 0), s3.handler())
    s3.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s3
    finally:
        server.shutdown()
        server.server_close()
