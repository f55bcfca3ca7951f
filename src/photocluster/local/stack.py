"""The local stack's processes: started on 127.0.0.1, watched, and always stopped.

Each server runs in its own process group (so its children go with it), logs to
``{workdir}/logs/{name}.log``, and is recorded in ``{workdir}/pids.json`` so that anyone can
check that nothing was left running. ``Stack`` is a context manager: leaving it for any
reason (normal exit, an error, Ctrl-C, SIGTERM) stops every process it started.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from photocluster.errors import StackError
from photocluster.store.files import FILE_MODE, make_folder


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


#: Where the kernel picks the local ports of outgoing connections (Linux's default range).
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Where free ports are looked for: below the usual ephemeral range, above the well-known.
PORTS_BELOW_EPHEMERAL = (20000, 32768)
_HANDED_OUT: set[int] = set()


def free_port(ephemeral_range_file: Path = EPHEMERAL_RANGE_FILE) -> int:
    """A loopback port free now, outside the range the kernel gives outgoing connections.
    A port the kernel hands out (``bind(0)``) is in that range, so between picking it and
    a server's bind, any client's connection could take it: a benchmark that restarted its
    stack four times failed so (``address already in use``)."""
    low, high = PORTS_BELOW_EPHEMERAL
    with suppress(OSError, ValueError):
        first, last = (int(n) for n in ephemeral_range_file.read_text().split())
        if first < high and last >= low:  # overlaps ours: keep below it
            high = first
    rng = random.SystemRandom()
    for _ in range(200 if high > low else 0):
        port = rng.randrange(low, high)
        if port not in _HANDED_OUT and port_is_free(port):
            _HANDED_OUT.add(port)  # a stack's servers bind later: never the same port twice
            return port
    with socket.socket() as sock:  # no room below the range, or all taken: the kernel's
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Managed:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    workdir: Path
    processes: list[Managed] = field(default_factory=list)

    def __post_init__(self) -> None:
        make_folder(self.workdir / "logs")  # the logs may hold a token: the user's alone

    # -------------------------------------------------------------- lifecycle

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Managed:
        log = self.workdir / "logs" / f"{name}.log"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        handle = os.fdopen(os.open(log, flags, FILE_MODE), "wb")
        process = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        managed = Managed(name, process, log)
        self.processes.append(managed)
        self._write_pids()
        return managed

    def wait_ready(
        self, managed: Managed, ready: Callable[[], bool], timeout: float = 120.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not managed.alive():
                raise StackError(
                    f"{managed.name} exited with code {managed.process.returncode}"
                    f"; its log ({managed.log}):\n{managed.tail()}"
                )
            try:
                if ready():
                    return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.1)
        raise StackError(
            f"{managed.name} not ready after {timeout:.0f} s; its log:\n{managed.tail()}"
        )

    def check(self) -> None:
        """Raise if any process died."""
        for managed in self.processes:
            if not managed.alive():
                raise StackError(
                    f"{managed.name} died (code {managed.process.returncode}); "
                    f"its log ({managed.log}):\n{managed.tail()}"
                )

    def stop(self) -> None:
        """Stop every process, newest first, each gone before the next is asked (SIGTERM,
        then SIGKILL after 10 s): the worker stops before the emulator it polls (stopped
        together, it logged the emulator's disappearance as a traceback)."""
        for managed in reversed(self.processes):
            if managed.alive():
                _signal_group(managed.process.pid, signal.SIGTERM)
            try:
                managed.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(managed.process.pid, signal.SIGKILL)
                managed.process.wait(timeout=10)
            _signal_group(managed.process.pid, signal.SIGKILL)  # stragglers in the group

    def pids(self) -> list[int]:
        return [m.process.pid for m in self.processes]

    def _write_pids(self) -> None:
        (self.workdir / "pids.json").write_text(
            json.dumps({m.name: m.process.pid for m in self.processes})
        )

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- the servers

    def start_moto(self, port: int, host: str = "127.0.0.1") -> str:
        """moto in server mode: S3, SQS and the rest of the emulated AWS account, listening
        on ``host``; the URL this machine's services reach it at."""
        url = f"http://127.0.0.1:{port}"
        managed = self.start(
            "aws",
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        )
        self.wait_ready(managed, lambda: httpx.get(f"{url}/moto-api/").status_code == 200, 30)
        return url

    def start_embedder(self, port: int, env: dict[str, str]) -> str:
        url = f"http://127.0.0.1:{port}"
        managed = self.start(
            "embedder",
            [sys.executable, "-m", "photocluster.embedder.server"],
            {**env, "PHOTOCLUSTER_EMBEDDER_PORT": str(port)},
        )
        self.wait_ready(managed, lambda: httpx.get(f"{url}/ping").status_code == 200, 300)
        return url

    def start_api(self, port: int, env: dict[str, str], host: str = "127.0.0.1") -> str:
        url = f"http://127.0.0.1:{port}"
        argv = ["api-serve", "--host", host, "--port", str(port)]
        managed = self.start("api", [sys.executable, "-m", "photocluster.cli", *argv], env)
        self.wait_ready(managed, lambda: httpx.get(f"{url}/health").status_code == 200, 60)
        return url

    def start_worker(self, env: dict[str, str]) -> Managed:
        ready = self.workdir / "logs" / "worker.ready"
        ready.unlink(missing_ok=True)
        managed = self.start(
            "worker",
            [sys.executable, "-m", "photocluster.cli", "worker", "--ready-file", str(ready)],
            env,
        )
        self.wait_ready(managed, ready.exists, 120)
        return managed


def _signal_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt while inside, so cleanup always runs.

    Set explicitly: a process started in the background by a non-interactive shell inherits
    SIGINT as ignored, and Python then never installs its own Ctrl-C handler.
    """

    def interrupt(signum: int, frame: FrameType | None) -> Any:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
