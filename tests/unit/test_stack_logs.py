"""The local stack's logs are the user's alone (issue 33: they were 0644, and `up` writes a
token into its log)."""

from __future__ import annotations

import sys
from pathlib import Path

from photocluster.local.stack import Stack


def test_the_logs_and_their_folder_are_the_users_alone(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "work")
    managed = stack.start("echo", [sys.executable, "-c", "print('hello')"], {})
    managed.process.wait(timeout=30)
    stack.stop()
    folder = tmp_path / "work" / "logs"
    assert folder.stat().st_mode & 0o077 == 0
    assert managed.log.stat().st_mode & 0o077 == 0 and "hello" in managed.log.read_text()
