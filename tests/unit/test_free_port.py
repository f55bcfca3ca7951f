"""The local stack's ports are picked outside the range the kernel gives outgoing
connections, so no client's connection takes one before its server binds it (a benchmark
that restarted its stack four times failed with ``address already in use``)."""

from __future__ import annotations

import socket
from pathlib import Path

from photocluster.local.stack import PORTS_BELOW_EPHEMERAL, free_port, port_is_free


def _range_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ip_local_port_range"
    path.write_text(text)
    return path


def test_a_port_is_free_and_below_the_kernels_range(tmp_path: Path) -> None:
    ranges = _range_file(tmp_path, "32768\t60999\n")
    ports = {free_port(ranges) for _ in range(20)}
    assert all(PORTS_BELOW_EPHEMERAL[0] <= port < 32768 for port in ports)
    assert all(port_is_free(port) for port in ports)
    assert len(ports) > 1  # drawn, not the same port for every server


def test_a_range_that_starts_lower_moves_the_ports_below_it(tmp_path: Path) -> None:
    ranges = _range_file(tmp_path, "25000 60999")
    assert all(20000 <= free_port(ranges) < 25000 for _ in range(20))


def test_with_no_room_below_the_range_the_kernel_picks(tmp_path: Path) -> None:
    port = free_port(_range_file(tmp_path, "1024 65535"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free, whoever picked it


def test_an_unreadable_range_file_still_gives_a_free_port(tmp_path: Path) -> None:
    port = free_port(tmp_path / "missing")
    assert PORTS_BELOW_EPHEMERAL[0] <= port < PORTS_BELOW_EPHEMERAL[1]
    assert port_is_free(port)
