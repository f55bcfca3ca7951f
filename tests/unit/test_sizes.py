"""Every module holds one concern and every function fits on one screen (STYLE.md,
Convention 7; issue 32's targets): no module over 400 lines, no function or method over 50,
in the package, the services' entry points and the benchmarks."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.procs import REPO

#: Where the limits hold: the package, the services' entry points, the benchmarks.
ROOTS = (REPO / "src" / "photocluster", REPO / "services", REPO / "bench")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def sources() -> Iterator[Path]:
    for root in ROOTS:
        yield from sorted(root.rglob("*.py"))


def name_of(path: Path) -> str:
    return str(path.relative_to(REPO))


def function_lengths(path: Path) -> Iterator[tuple[str, int]]:
    """Each function's and method's lines, ``def`` to its last line (docstring and
    decorators' lines after the ``def`` included), named ``file:line name``."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            where = f"{name_of(path)}:{node.lineno} {node.name}"
            yield where, node.end_lineno - node.lineno + 1


def test_the_limits_see_every_root() -> None:
    """A root that moved would make the other two tests pass on nothing."""
    assert all(any(root.rglob("*.py")) for root in ROOTS)


def test_no_module_is_over_400_lines() -> None:
    lines = {name_of(path): len(path.read_text().splitlines()) for path in sources()}
    too_long = {name: n for name, n in lines.items() if n > MAX_MODULE_LINES}
    assert too_long == {}, "split them by concern into sibling modules"


def test_no_function_is_over_50_lines() -> None:
    lengths = (length for path in sources() for length in function_lengths(path))
    too_long = dict(length for length in lengths if length[1] > MAX_FUNCTION_LINES)
    assert too_long == {}, "split them into named steps"
