"""The load test's clients: the normal ones looping one request, the abusive one looping
those the others never send, and one phase of them against the API (see
:mod:`bench.loadtest`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.loadtest_writers import WriterStats

BELOW_FLOOR = 0.05
TIMEOUT_S = 60.0
ABUSIVE_GRACE_S = 30.0


@dataclass
class Tally:
    """Latencies and outcomes of one group of requests."""

    latencies_s: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    last_end: float = 0.0

    def add(self, seconds: float, outcome: str) -> None:
        self.latencies_s.append(seconds)
        self.outcomes[outcome] += 1
        self.last_end = time.monotonic()

    @property
    def errors(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if outcome != "200")


async def timed_get(client: httpx.AsyncClient, path: str, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        response = await client.get(path)
        outcome = str(response.status_code)
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
    tally.add(time.perf_counter() - started, outcome)


async def normal_client(
    client: httpx.AsyncClient, path: str, deadline: float, tally: Tally
) -> None:
    while time.monotonic() < deadline:
        await timed_get(client, path, tally)


def abusive_requests(user: str, image_id: str) -> dict[str, str]:
    """What the abusive client sends, by kind (looped in this order)."""
    base = f"/v1/users/{user}"
    low = BELOW_FLOOR
    return {
        "clusters below floor": f"{base}/clusters?low={low}&medium={2 * low}&high={3 * low}",
        "pairs below floor, limit 1000": f"{base}/pairs?min_score={low}&limit=1000",
        "pairs limit 1000": f"{base}/pairs?min_score=0.5&limit=1000",
        "similar k=500": f"{base}/images/{image_id}/similar?k=500",
        "clusters min_size=1 (every photo)": f"{base}/clusters?min_size=1",
        "query 10 KB (min_size x 1000)": f"{base}/clusters?" + "&".join(["min_size=2"] * 1000),
        # httpx refuses URLs over 64 KiB
        "query 60 KB (unknown parameter)": f"{base}/clusters?pad=" + "x" * 60_000,
    }


async def abusive_client(
    client: httpx.AsyncClient, requests: dict[str, str], deadline: float, tallies: dict[str, Tally]
) -> None:
    while time.monotonic() < deadline:
        for kind, path in requests.items():
            if time.monotonic() >= deadline:
                return
            await timed_get(client, path, tallies.setdefault(kind, Tally()))


@dataclass(frozen=True)
class Load:
    """How hard a phase presses: normal clients, seconds, and the server's workers."""

    clients: int
    duration: float
    workers: int


@dataclass
class Phase:
    name: str
    normal: Tally
    elapsed_s: float
    writes: WriterStats
    abusive: dict[str, Tally] = field(default_factory=dict)


def new_client(url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT_S,
        limits=httpx.Limits(max_connections=1),
    )


async def warm_up(url: str, token: str, path: str, workers: int) -> None:
    """A few concurrent requests first, so that every worker has loaded the library."""
    async with new_client(url, token) as client:
        await client.get(path)
    clients = [new_client(url, token) for _ in range(2 * workers)]
    try:
        await asyncio.gather(*(c.get(path) for c in clients for _ in range(2)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def drive(url: str, token: str, user: str, load: Load, abusive: bool) -> Phase:
    path = f"/v1/users/{user}/clusters"
    await warm_up(url, token, path, load.workers)
    clients = [new_client(url, token) for _ in range(load.clients + 1)]
    normal = Tally()
    tallies: dict[str, Tally] = {}
    started = time.monotonic()
    deadline = started + load.duration
    tasks = [asyncio.create_task(normal_client(c, path, deadline, normal)) for c in clients[1:]]
    abuser = None
    if abusive:
        requests = abusive_requests(user, "img-000000")
        abuser = asyncio.create_task(abusive_client(clients[0], requests, deadline, tallies))
    try:
        await asyncio.gather(*tasks)
        if abuser is not None:
            await finish_abuser(abuser, deadline, tallies)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    elapsed = (normal.last_end or time.monotonic()) - started
    name = "abusive" if abusive else "quiet"
    return Phase(name, normal, elapsed, WriterStats(), tallies)


async def finish_abuser(
    task: asyncio.Task[None], deadline: float, tallies: dict[str, Tally]
) -> None:
    """Let the abusive client's last request end, up to a grace period past the deadline."""
    remaining = deadline + ABUSIVE_GRACE_S - time.monotonic()
    try:
        await asyncio.wait_for(task, timeout=max(0.1, remaining))
    except TimeoutError:
        tallies.setdefault("(cut at the end of the phase)", Tally()).add(0.0, "cancelled")
