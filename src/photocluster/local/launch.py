"""Starting the local stack: every server of ``make demo`` and ``make up`` on this machine.

:func:`start` starts moto (or uses an emulator already running), creates the bucket and
the queues, then starts the embedder, the ingest worker and the cluster API, each with the
environment the local services share (:class:`Options` says on which ports and addresses).
:func:`app_client` and :func:`token` reach the running API as a user's phone does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from photocluster.config import OFFLINE_MODEL, Settings
from photocluster.errors import StackError
from photocluster.local.app import AppClient
from photocluster.local.aws import (
    Resources,
    allow_uploads_from,
    bootstrap,
    emulator_client,
    emulator_env,
)
from photocluster.local.models import baked_offline_model
from photocluster.local.stack import Stack, free_port, port_is_free
from photocluster.store.files import make_folder

DEMO_USER = "demo"


@dataclass(frozen=True)
class Options:
    workdir: Path
    aws_port: int = 4566
    api_port: int = 8000
    embedder_port: int = 8080
    aws_endpoint: str | None = None  # an emulator already running (LocalStack, say)
    timeout_s: float = 300.0
    queue_delay_s: int = 1
    samples: bool = True
    services_env: dict[str, str] = field(default_factory=dict)  # settings for every service
    host: str = "127.0.0.1"  # where the API and the emulator listen (0.0.0.0: the LAN too)
    public_url: str | None = None  # how a phone reaches this machine: http://192.168.1.20
    cors_origins: tuple[str, ...] = ()  # web pages that may call the API and PUT to S3

    def reached_at(self) -> str | None:
        """How a phone reaches this machine: the public URL given, else this machine's
        LAN address when the stack listens beyond loopback (None: loopback only)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.host in ("127.0.0.1", "localhost", "::1"):
            return None
        return f"http://{lan_address()}"

    @classmethod
    def on_free_ports(cls, workdir: Path, queue_delay_s: int = 0) -> Options:
        """A stack beside any other (tests, benchmarks): free loopback ports, no delay."""
        return cls(
            workdir=workdir,
            aws_port=free_port(),
            api_port=free_port(),
            embedder_port=free_port(),
            queue_delay_s=queue_delay_s,
        )


def lan_address() -> str:
    """This machine's address on its default route (no packet is sent), else loopback."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


@dataclass
class Running:
    stack: Stack
    aws_url: str
    api_url: str
    embedder_url: str
    resources: Resources
    secret: str
    env: dict[str, str]
    public_api_url: str = ""  # as a phone reaches it (the api_url on loopback)


def start(options: Options, stack: Stack, thumbnails_from_files: bool, say: Any) -> Running:
    """Start every server of the local stack (the caller's Stack stops them)."""
    _check_ports(options)
    aws_url = options.aws_endpoint or stack.start_moto(options.aws_port, options.host)
    say(f"AWS emulator      {aws_url}" + ("" if options.aws_endpoint else "  (moto)"))
    local = Settings(
        queue_delay_s=options.queue_delay_s,
        queue_visibility_s=20,
        queue_max_receive=3,
        name="photocluster-local",
    )
    s3 = emulator_client("s3", aws_url)
    resources = bootstrap(s3, emulator_client("sqs", aws_url), local)
    if options.cors_origins:  # a web page PUTs to presigned URLs: the bucket must allow it
        allow_uploads_from(s3, resources.bucket, list(options.cors_origins))
    say(
        f"bucket            {resources.bucket} -> queue {resources.queue_url.rsplit('/', 1)[-1]}"
        f" (delay {local.queue_delay_s} s, DLQ after {local.queue_max_receive} receives)"
    )
    secret = secrets.token_urlsafe(32)
    env = _services_env(options.workdir, aws_url, resources, secret, local.name)
    public = options.reached_at()
    if public is not None:  # presigned URLs name the address the phone reaches
        env["PHOTOCLUSTER_S3_PUBLIC_URL"] = f"{public}:{options.aws_port}"
    if options.cors_origins:
        env["PHOTOCLUSTER_CORS_ORIGINS"] = ",".join(options.cors_origins)
    env |= options.services_env
    if thumbnails_from_files:  # the saved gallery page keeps working after the demo exits
        env["PHOTOCLUSTER_THUMBNAIL_URL_TEMPLATE"] = (
            options.workdir / "samples"
        ).resolve().as_uri() + "/{user_id}/{image_id}"
    # served as the SageMaker image serves: baked, at the runtime its fidelity gate chose
    baked = {"PHOTOCLUSTER_MODEL": str(baked_offline_model())}
    embedder_url = stack.start_embedder(options.embedder_port, env | baked)
    served = httpx.get(f"{embedder_url}/ping", timeout=10).json()
    say(f"embedder          {embedder_url}  model {served['model']}, {served['runtime']}")
    env["PHOTOCLUSTER_EMBEDDER_URL"] = embedder_url
    stack.start_worker(env)
    say("ingest worker     polling the queue (the real ingest + writer handlers)")
    api_url = stack.start_api(options.api_port, env, options.host)
    shown = f"{public}:{options.api_port}" if public else api_url
    say(f"cluster API       {shown}  (docs: {shown}/docs; listening on {options.host})")
    if options.cors_origins:
        say(f"CORS              {', '.join(options.cors_origins)} (the API and the bucket)")
    return Running(stack, aws_url, api_url, embedder_url, resources, secret, env, shown)


def _check_ports(options: Options) -> None:
    """Refuse early, saying which flag moves it, when a port the stack needs is taken."""
    ports = {"--api-port": options.api_port, "--embedder-port": options.embedder_port}
    if options.aws_endpoint is None:
        ports["--aws-port"] = options.aws_port
    for flag, port in ports.items():
        if not port_is_free(port):
            hint = (
                f" (an emulator already running? pass --aws-endpoint http://127.0.0.1:{port}"
                " to use it)"
                if flag == "--aws-port"
                else ""
            )
            raise StackError(f"port {port} is in use; choose another with {flag}{hint}")


def _services_env(
    workdir: Path, aws_url: str, resources: Resources, secret: str, name: str
) -> dict[str, str]:
    """The environment of the local services: the emulator, the resources, a local EFS."""
    store = workdir / "efs" / "store"
    make_folder(store)  # 0700, as the store's own folders
    return {
        **emulator_env(aws_url),
        "PHOTOCLUSTER_STORE_ROOT": str(store),
        "PHOTOCLUSTER_MODEL": OFFLINE_MODEL,
        "PHOTOCLUSTER_MODEL_DIR": str(workdir / "no-sagemaker-artifacts"),
        "PHOTOCLUSTER_QUEUE_URL": resources.queue_url,
        "PHOTOCLUSTER_DLQ_URL": resources.dlq_url,
        "PHOTOCLUSTER_BUCKET": resources.bucket,
        "PHOTOCLUSTER_JWT_SECRET": secret,
        "PHOTOCLUSTER_NAME": name,
        "HF_HUB_OFFLINE": "1",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def app_client(running: Running, user: str = DEMO_USER) -> AppClient:
    """The API as the demo user's phone sees it."""
    return AppClient(running.api_url, user, token(running, user))


def token(running: Running, user: str = DEMO_USER) -> str:
    from photocluster.api.auth import make_token

    return make_token(running.secret, user, ttl_s=12 * 3600)
