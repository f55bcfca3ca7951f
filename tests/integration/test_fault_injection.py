"""Fault injection: a writer killed at random points, over and over, on one store.

Each iteration forks a writer that runs an endless seeded sequence of ``Library.write`` and
``Library.delete`` batches for one user (new ids, re-upserts, deletes: compaction, graph
saves and catalog rewrites all happen), and kills it: half the time with SIGKILL from this
process a random time after it starts, half the time by its own timer (SIGALRM unhandled:
the kernel ends it on the spot) up to 1.5 ms into the store step of one of its batches
(append, commit, tombstones, compaction), which a kill sent from here would mostly miss. The store
directory is kept across iterations, so the damage of every kill is what the next writer
starts from, as in production. A reader process runs ``Library.clusters`` and
``Store.read`` for the whole test. After each kill:

1. the store opens;
2. it holds exactly the state after the last batch the writer reported committed, or after
   the batch in flight (the writer's batches are replayed here from its seed: ids *and*
   vectors are compared, so an id never written cannot appear either);
3. the batch in flight, delivered again (as the queue redelivers what the writer never
   acknowledged), leaves the state after it;
4. after one more ordinary write: no temporary file is left under the root, the store holds
   the state plus that write, the image records say ready for exactly the stored images,
   the graph is fresh, covers every image and clusters exactly as one built from scratch;
5. the reader saw no exception.

The slow variant (``make test`` runs the default of 50 iterations per seed; ``-s`` prints
what the kills hit)::

    make faults  # or: PHOTOCLUSTER_FAULT_ITERATIONS=500 .venv/bin/python -m pytest -s \
                 #         tests/integration/test_fault_injection.py
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest

from photocluster.clustering.graph import build_graph
from photocluster.clustering.tiers import cluster_graph
from photocluster.config import Settings
from photocluster.errors import UnknownUser
from photocluster.library import Library
from photocluster.store import Store, Transaction, normalise_vectors
from photocluster.store.snapshot import load_snapshot

USER = "fault-user"
MODEL = "m"
DIM = 32
CENTRES = 24  # orthonormal directions the vectors gather around: real groups
TARGET_IMAGES = 200  # the plan deletes more the larger the library grows past this
IMAGE_IDS = [f"img-{j}" for j in range(800)]  # deleted ids come back: the records stay small
BATCH_MAX = 300
MAX_DELAY_S = 0.3  # after the writer is ready
MAX_DELAY_IN_STORE_S = 0.0015  # into a batch's store step: it takes about 1 ms
SEEDS = (20240611, 7)
ITERATIONS = int(os.environ.get("PHOTOCLUSTER_FAULT_ITERATIONS", "50"))
TIERS = {"low": 0.3, "medium": 0.5, "high": 0.8}
READY_TIMEOUT_S = 30.0
READER_PAUSE_S = 0.005  # between reads: the writer and the checks get a core too

State = dict[str, npt.NDArray[np.float32]]
Message = tuple[Any, ...]


def _settings(root: Path) -> Settings:
    """Small compaction thresholds (compactions happen often) and a graph floor at the
    lowest tier checked (cluster_graph cuts only at or above the floor)."""
    return Settings(
        store_root=root,
        model=MODEL,
        store_fsync=False,
        compact_ratio=0.2,
        compact_min_dead=8,
        index_floor=TIERS["low"],
    )


_BASIS = np.linalg.qr(np.random.default_rng(0).standard_normal((DIM, DIM)))[0]
_CENTRE_VECTORS: npt.NDArray[np.float64] = _BASIS[:CENTRES]


def _vectors(rng: np.random.Generator, k: int) -> npt.NDArray[np.float64]:
    """Vectors near random centres, some tight (similarity ~0.99), some loose (~0.4)."""
    centres = _CENTRE_VECTORS[rng.integers(0, CENTRES, size=k)]
    spread = rng.uniform(0.1, 1.3, size=(k, 1))
    noise: npt.NDArray[np.float64] = rng.standard_normal((k, DIM)) / np.sqrt(DIM)
    return centres + spread * noise


@dataclass(frozen=True)
class Batch:
    op: Literal["write", "delete"]
    ids: list[str]
    vectors: npt.NDArray[np.float64] | None = None


class Plan:
    """The writer's batches and the state after each: the same seed and start state give
    the same batches, so the parent replays what a killed writer was doing."""

    def __init__(self, seed: int, start: State) -> None:
        self.rng = np.random.default_rng(seed)
        self.state: State = dict(start)

    def next(self) -> Batch:
        """The next batch, applied to ``self.state``."""
        size = int(self.rng.integers(1, BATCH_MAX + 1))
        n = len(self.state)
        if n and self.rng.random() < 0.75 * n / (n + TARGET_IMAGES):
            return self._delete(min(size, n))
        return self._write(size)

    def _pick(self, ids: list[str], k: int) -> list[str]:
        return [ids[i] for i in self.rng.choice(len(ids), size=k, replace=False)]

    def _delete(self, k: int) -> Batch:
        ids = self._pick(list(self.state), k)
        for image_id in ids:
            del self.state[image_id]
        if self.rng.random() < 0.2:
            ids.append("never-stored")  # counted as missing
        return Batch("delete", ids)

    def _write(self, size: int) -> Batch:
        old = min(int(self.rng.binomial(size, 0.4)), len(self.state))
        new = [i for i in IMAGE_IDS if i not in self.state]
        ids = self._pick(list(self.state), old) + self._pick(new, min(size - old, len(new)))
        self.rng.shuffle(ids)
        vectors = _vectors(self.rng, len(ids))
        self.state.update(zip(ids, normalise_vectors(vectors), strict=True))
        return Batch("write", ids, vectors)


def _apply(library: Library, batch: Batch) -> int:
    """Run one batch through the library; the number of images stored after it."""
    if batch.op == "delete":
        return library.delete(USER, batch.ids).n_images
    assert batch.vectors is not None
    return library.write(USER, MODEL, batch.ids, batch.vectors).n_images


# ---------------------------------------------------------------------- child processes


def _die_in_store_step(batch: int, delay: float) -> None:
    """Make this (child) process die ``delay`` into the store step (``Transaction.upsert``
    or ``delete``) of its ``batch``-th batch: a timer whose SIGALRM nobody handles, so the
    kernel ends the process wherever it is, as SIGKILL would. A kill sent by the parent
    lands a scheduling delay late: past the step, which takes about a millisecond."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # not pytest-timeout's, inherited
    steps = itertools.count(1)
    for name in ("upsert", "delete"):
        step = getattr(Transaction, name)

        def timed(self: Transaction, *args: Any, _step: Any = step) -> Any:
            if next(steps) == batch:
                signal.setitimer(signal.ITIMER_REAL, max(delay, 1e-6))
            return _step(self, *args)

        setattr(Transaction, name, timed)


def _write_until_killed(
    root: Path, seed: int, start: State, kill_in: tuple[int, float], conn: Connection
) -> None:
    """The writer: batches forever, reporting each before it starts and once committed;
    ``kill_in``: (batch, delay) to die in that batch's store step, (0, 0) not to."""
    try:
        if kill_in[0]:
            _die_in_store_step(*kill_in)
        library = Library.from_settings(_settings(root))
        plan = Plan(seed, start)
        conn.send(("ready",))
        k = 0
        while True:
            batch = plan.next()
            k += 1
            conn.send(("begin", k, batch.op))
            n_images = _apply(library, batch)
            conn.send(("committed", k, n_images, library.store.header(USER).epoch))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        os._exit(1)


def _read_until_stopped(root: Path, conn: Connection, stop: Event) -> None:
    """The reader: clusters and snapshots in a loop; every exception is reported (none
    expected but UnknownUser while no store file exists yet)."""
    library = Library.from_settings(_settings(root))
    while not stop.is_set():
        existed = library.store.exists(USER)
        try:
            library.clusters(USER)
            library.store.read(USER)
            conn.send(("read",))
        except UnknownUser:
            if existed:
                conn.send(("error", traceback.format_exc()))
        except Exception:
            conn.send(("error", traceback.format_exc()))
        time.sleep(READER_PAUSE_S)
    conn.send(("done",))


# ---------------------------------------------------------------------- the parent


@dataclass
class Tally:
    """What the kills hit, for the summary (and to show that they hit something)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    compactions: int = 0
    reads: int = 0
    reads_per_iteration: list[int] = field(default_factory=list)

    def summary(self, seed: int, seconds: float) -> str:
        found = ", ".join(f"{name}: {n}" for name, n in sorted(self.outcomes.items()))
        quiet = sum(1 for r in self.reads_per_iteration if r == 0)
        return (
            f"seed {seed}: {ITERATIONS} kills in {seconds:.1f} s; {self.batches} batches "
            f"committed, {self.compactions} compactions by killed writers, {self.reads} reads "
            f"({quiet} iterations without one); {found}"
        )


@dataclass
class Kill:
    """One iteration's writer: its seed, where it was when killed, what it reported."""

    iteration: int
    writer_seed: int
    in_batch: int  # dies this far into this batch's store step; 0: SIGKILL after ready
    delay: float
    start: State
    messages: list[Message] = field(default_factory=list)

    @classmethod
    def draw(cls, rng: random.Random, iteration: int, start: State) -> Kill:
        """Half the kills a uniform time into the writer's run, half within a batch's store
        step (its append, commit, tombstones and compaction: a small part of a batch's time,
        the graph and the records take most)."""
        writer_seed = rng.randrange(2**32)
        if rng.random() < 0.5:
            return cls(iteration, writer_seed, 0, rng.uniform(0, MAX_DELAY_S), start)
        batch = rng.randint(2, 4)  # not the first: a cold start takes longer
        return cls(iteration, writer_seed, batch, rng.uniform(0, MAX_DELAY_IN_STORE_S), start)

    def last(self, kind: str) -> int:
        return max((m[1] for m in self.messages if m[0] == kind), default=0)

    @property
    def kill_point(self) -> str:
        if self.in_batch:
            return f"by its timer {self.delay:.5f} s into batch {self.in_batch}'s store step"
        return f"with SIGKILL {self.delay:.3f} s after it was ready"

    def context(self, seed: int) -> str:
        return (
            f"seed {seed}, iteration {self.iteration}, writer seed {self.writer_seed}, "
            f"killed {self.kill_point}; batches begun {self.last('begin')}, "
            f"committed {self.last('committed')}"
        )


def _drain(conn: Connection, timeout: float = 0.0) -> list[Message]:
    """Every message waiting (up to ``timeout`` for the first), until empty or closed."""
    messages: list[Message] = []
    while conn.poll(timeout):
        timeout = 0.0
        try:
            messages.append(conn.recv())
        except EOFError:
            break
    return messages


def _stored(root: Path) -> State:
    """The user's live embeddings as a fresh process reads them (empty: no file yet)."""
    try:
        snap = Store(root, fsync=False).read(USER)
    except UnknownUser:
        return {}
    return {i: v.copy() for i, v in zip(snap.id_list(), snap.vectors, strict=True)}


def _difference(expected: State, found: State) -> str | None:
    """What differs between two states, or None."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    changed = sorted(
        i for i in set(expected) & set(found) if not np.array_equal(expected[i], found[i])
    )
    if not (missing or extra or changed):
        return None
    return (
        f"expected {len(expected)} images, found {len(found)}; missing {missing[:5]} "
        f"({len(missing)}), never written or deleted {extra[:5]} ({len(extra)}), "
        f"other vector {changed[:5]} ({len(changed)})"
    )


def _wait_for_kill_point(conn: Connection, kill: Kill) -> None:
    """Collect the writer's messages until ``kill.delay`` after it was ready, or until it
    dies of its own timer."""
    wait = kill.delay if not kill.in_batch else READY_TIMEOUT_S
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0 and conn.poll(left):
        try:
            kill.messages.append(conn.recv())
        except EOFError:
            return  # it died
    assert not kill.in_batch, f"the writer outlived its timer: {kill.messages[-3:]}"


def _run_writer(
    context: multiprocessing.context.ForkContext,
    root: Path,
    kill: Kill,
) -> None:
    """Start a writer, kill it at ``kill``'s point, collect its messages."""
    receive, send = context.Pipe(duplex=False)
    kill_in = (kill.in_batch, kill.delay if kill.in_batch else 0.0)
    writer = context.Process(
        target=_write_until_killed, args=(root, kill.writer_seed, kill.start, kill_in, send)
    )
    writer.start()
    send.close()
    try:
        assert receive.poll(READY_TIMEOUT_S), "the writer did not start"
        kill.messages.append(receive.recv())
        assert kill.messages == [("ready",)], f"the writer did not start: {kill.messages}"
        _wait_for_kill_point(receive, kill)
    finally:
        writer.kill()
        writer.join()
    kill.messages += _drain(receive)
    receive.close()
    errors = [m[1] for m in kill.messages if m[0] == "error"]
    signum = signal.SIGALRM if kill.in_batch else signal.SIGKILL
    assert not errors and writer.exitcode == -signum, (writer.exitcode, errors)


@dataclass
class Replayed:
    """Where the killed writer was: the state after the last batch it reported committed,
    the batch it had begun since (if any) and the state after that one."""

    committed: State
    in_flight: State
    batch: Batch | None


def _replay(kill: Kill) -> Replayed:
    """Replay the writer's batches, checking the image counts it reported on the way."""
    begun, committed = kill.last("begin"), kill.last("committed")
    reported = {m[1]: m[2] for m in kill.messages if m[0] == "committed"}
    plan = Plan(kill.writer_seed, kill.start)
    before = after = plan.state
    batch = None
    for k in range(1, begun + 1):
        before = dict(plan.state)
        batch = plan.next()
        after = plan.state
        assert reported.get(k, len(after)) == len(after), f"batch {k}: {reported[k]} images"
    if begun == committed:
        return Replayed(after, after, None)
    return Replayed(before, after, batch)


def _check_committed_state(root: Path, kill: Kill, seed: int, tally: Tally) -> Replayed:
    """Invariants 1 and 2: the store opens and holds the state after the last committed
    batch or after the one in flight."""
    replayed = _replay(kill)
    committed, in_flight = replayed.committed, replayed.in_flight
    found = _stored(root)  # raises if the store does not open
    op = replayed.batch.op if replayed.batch else ""
    if _difference(committed, found) is None:
        outcome = f"mid-batch ({op}), none of it visible" if op else "between batches"
    elif _difference(in_flight, found) is None:
        outcome = f"mid-batch ({op}), all of it visible"
    else:
        pytest.fail(
            f"{kill.context(seed)}: the store holds neither committed state.\n"
            f"vs last committed: {_difference(committed, found)}\n"
            f"vs batch in flight: {_difference(in_flight, found)}"
            f"{_partly_applied(committed, in_flight, found)}"
        )
    tally.outcomes[outcome] += 1
    return replayed


def _redeliver(root: Path, replayed: Replayed, context: str) -> State:
    """The batch the writer was killed in, delivered again (as the queue redelivers what
    was never acknowledged): the store then holds the state after it, whatever the kill
    left. Returns that state."""
    if replayed.batch is None:
        return replayed.committed
    _apply(Library.from_settings(_settings(root)), replayed.batch)
    difference = _difference(replayed.in_flight, _stored(root))
    assert difference is None, f"{context}: after the batch was delivered again: {difference}"
    return replayed.in_flight


def _partly_applied(committed: State, in_flight: State, found: State) -> str:
    """A note when ``found`` is the committed state less some of the batch's deletions."""
    deleted = set(committed) - set(in_flight)
    gone = set(committed) - set(found)
    unchanged = all(np.array_equal(committed[i], v) for i, v in found.items() if i in committed)
    if not (set(found) <= set(committed) and unchanged and gone and gone < deleted):
        return ""
    return (
        f"\n=> the batch in flight is visible in part: {len(gone)} of the {len(deleted)} "
        "images it deletes are gone, the others still stored"
    )


_TEMP_OF = {"pcs": "store", "pcg": "graph", "pci": "catalog"}


def _observe_damage(root: Path, library: Library, tally: Tally) -> None:
    """What the kill left for the next writer (racing the reader, which may repair it
    first: for the summary only)."""
    for path in root.rglob(".*.tmp"):
        tally.outcomes[f"left a temporary {_TEMP_OF.get(path.name.split('.')[-2])} file"] += 1
    data = library.store.paths(USER).data
    if not data.exists():
        return
    fd = os.open(data, os.O_RDONLY)
    try:
        needs_repair = load_snapshot(fd, USER, data)[1]
    finally:
        os.close(fd)
    if needs_repair:
        tally.outcomes["left uncommitted records or a live duplicate"] += 1
    if library.graphs.fresh(USER, edges=False) is None:
        tally.outcomes["left the graph stale"] += 1


def _write_one_more(root: Path, found: State, seed: int, iteration: int) -> State:
    """An ordinary write after the kill; the state the store must then hold."""
    image_id = f"after-{seed}-{iteration}"
    vectors = _vectors(np.random.default_rng([seed, iteration]), 1)
    Library.from_settings(_settings(root)).write(USER, MODEL, [image_id], vectors)
    return {**found, image_id: normalise_vectors(vectors)[0]}


def _check_after_write(root: Path, expected: State, context: str) -> None:
    """Invariant 4: no temporary file, the state plus the write, records that agree, a
    fresh graph that clusters as one built from scratch (read from disk by a new Library)."""
    leftovers = sorted(str(p.relative_to(root)) for p in root.rglob(".*.tmp"))
    assert leftovers == [], f"{context}: temporary files left after a write: {leftovers}"
    difference = _difference(expected, _stored(root))
    assert difference is None, f"{context}: after one more write: {difference}"
    library = Library.from_settings(_settings(root))
    records = library.records.current(USER)
    ready = {image_id for image_id, record in records.items() if record.status == "ready"}
    assert ready == set(expected), (
        f"{context}: records and store disagree: recorded ready but not stored "
        f"{sorted(ready - set(expected))[:5]}, stored but not ready "
        f"{sorted(set(expected) - ready)[:5]}"
    )
    with library.store.shared_lock(USER):
        snap = library.store.read(USER)
        graph = library.graphs.fresh(USER, edges=True)
    assert graph is not None, f"{context}: the graph is stale after a write"
    assert graph.n == snap.n and graph.ids.tolist() == snap.ids.tolist(), context
    rebuilt = build_graph(snap.ids, snap.vectors, graph.params)
    for linkage in ("complete", "average", "single"):
        kept = [t.groups for t in cluster_graph(graph, TIERS, linkage)]
        assert kept == [t.groups for t in cluster_graph(rebuilt, TIERS, linkage)], (
            f"{context}: the graph's {linkage}-linkage groups differ from a rebuilt graph's"
        )


def _check_reader(conn: Connection, context: str, tally: Tally) -> None:
    """Invariant 5: the reader saw no exception (during the kill, the repair or the write)."""
    messages = _drain(conn)
    errors = [m[1] for m in messages if m[0] == "error"]
    assert not errors, f"{context}: the reader failed {len(errors)} times; first:\n{errors[0]}"
    reads = sum(1 for m in messages if m[0] == "read")
    tally.reads += reads
    tally.reads_per_iteration.append(reads)


def _count_compactions(kill: Kill, start_epoch: int, tally: Tally) -> None:
    epochs = [start_epoch] + [m[3] for m in kill.messages if m[0] == "committed"]
    tally.compactions += sum(1 for a, b in itertools.pairwise(epochs) if a != b)
    tally.batches += kill.last("committed")


def _iteration(
    context: multiprocessing.context.ForkContext,
    root: Path,
    seed: int,
    kill: Kill,
    reader: Connection,
    tally: Tally,
) -> State:
    """One writer killed and every invariant checked; the state the next one starts from."""
    library = Library.from_settings(_settings(root))
    start_epoch = library.store.header(USER).epoch if library.store.exists(USER) else 0
    _run_writer(context, root, kill)
    _observe_damage(root, library, tally)
    replayed = _check_committed_state(root, kill, seed, tally)
    _count_compactions(kill, start_epoch, tally)
    delivered = _redeliver(root, replayed, kill.context(seed))
    expected = _write_one_more(root, delivered, seed, kill.iteration)
    _check_after_write(root, expected, kill.context(seed))
    _check_reader(reader, kill.context(seed), tally)
    return expected


def _stop_reader(reader: BaseProcess, conn: Connection, stop: Event) -> list[Message]:
    """Stop the reader; what it sent since it was last heard."""
    stop.set()
    messages: list[Message] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and reader.is_alive():
        messages += _drain(conn, 0.1)  # it may be blocked sending
        reader.join(0.1)
    if reader.is_alive():
        reader.kill()
        reader.join()
    return messages + _drain(conn)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_writers_killed_anywhere_leave_a_committed_state_that_the_next_write_repairs(
    tmp_path: Path, seed: int
) -> None:
    context = multiprocessing.get_context("fork")  # no import per writer: many kills a second
    rng = random.Random(seed)
    receive, send = context.Pipe(duplex=False)
    stop = context.Event()
    reader = context.Process(target=_read_until_stopped, args=(tmp_path, send, stop))
    reader.start()
    send.close()
    tally = Tally()
    started = time.monotonic()
    state: State = {}
    try:
        for iteration in range(ITERATIONS):
            kill = Kill.draw(rng, iteration, state)
            state = _iteration(context, tmp_path, seed, kill, receive, tally)
    finally:
        last = _stop_reader(reader, receive, stop)
    print(tally.summary(seed, time.monotonic() - started))
    assert not [m for m in last if m[0] == "error"], last
    assert tally.reads > 0, "the reader never got a read through"
    if ITERATIONS >= 20:  # the kills must land inside batches, and writers must compact
        assert any(name.startswith("mid-batch") for name in tally.outcomes), tally.outcomes
        assert tally.compactions > 0
