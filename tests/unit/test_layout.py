"""The layout keeps its promises: packages that do not import each other in circles,
functions that fit on a screen, service entry points without logic, a README that maps
every package (STYLE.md, Layout and Conventions 1 and 7)."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.procs import REPO

SRC = REPO / "src" / "photocluster"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(path: Path, names: set[str]) -> set[str]:
    """The package's modules ``path`` imports, anywhere in it (lazy imports included)."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        targets.update(name for name in candidates if name in names)
    return targets


def test_no_two_modules_import_each_other_even_lazily() -> None:
    found = modules()
    graph = {name: imported(path, set(found)) - {name} for name, path in found.items()}
    # A package's __init__ importing its own submodules is how packages re-export.
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not t.startswith(name + ".")}
    cycles = list(_cycles(graph))
    assert cycles == []


def _cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> Iterator[list[str]]:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                yield [*stack[stack.index(target) :], target]
            elif target not in state:
                yield from visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            yield from visit(node)


@pytest.mark.parametrize(
    "entry", sorted(p for p in (REPO / "services").rglob("*") if p.is_file()), ids=str
)
def test_service_entry_points_hold_no_logic(entry: Path) -> None:
    tree = ast.parse(entry.read_text())
    logic = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.For)
    ]
    assert logic == [], "move it into src/photocluster and test it there"


def test_the_readme_code_map_names_every_package_and_module() -> None:
    """Each package has its row, and each module is named in its package's row (a
    sub-package by its folder), each top-level module as ``name.py``: the map cannot
    drift from the code."""
    readme = (REPO / "README.md").read_text()
    code_map = readme.split("## Code map", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)/` \|(.*)$", code_map, flags=re.MULTILINE))
    packages = {p.parent.name for p in SRC.glob("*/__init__.py")}
    assert packages <= set(rows), f"add to the README's code map: {sorted(packages - set(rows))}"
    top = set(re.findall(r"`([a-z_]+)\.py`", code_map))
    missing = [p.name for p in SRC.glob("*.py") if p.stem not in (*OUTSIDE_THE_MAP, *top)]
    for package in packages:
        named = set(re.findall(r"`([a-z_]+)/?`", rows[package]))
        for module in (SRC / package).rglob("*.py"):
            first = module.relative_to(SRC / package).parts[0].removesuffix(".py")
            if module.stem not in OUTSIDE_THE_MAP and first not in named:
                missing.append(f"{package}/{module.relative_to(SRC / package)}")
    assert sorted(missing) == [], "name them in the README's code map"


OUTSIDE_THE_MAP = ("__init__", "__main__")


def test_the_store_owns_every_file_replace_and_every_per_user_suffix() -> None:
    """Issue 28: one owner for the per-user files. Renames (an atomic replace) happen in
    store/files.py alone; the per-user files' suffixes are named in store/format.py alone;
    the other packages ask the store (files, documents, sections) to write."""
    renames = re.compile(r"\bos\.(replace|rename)\(|\.rename\(|\.replace\(tmp")
    suffix = re.compile(r"""["']\.pc[a-z]["']""")
    for name, path in modules().items():
        text = path.read_text()
        if name != "photocluster.store.files":
            assert not renames.search(text), f"{name} replaces a file itself"
        if name != "photocluster.store.format":
            assert not suffix.search(text), f"{name} names a per-user file's suffix"


def owned_by(owner: str, rules: dict[str, re.Pattern[str]]) -> list[str]:
    """``module: what`` for each module other than ``owner`` whose text matches a rule."""
    return [
        f"{name}: {what}"
        for name, path in modules().items()
        if name != owner
        for what, rule in rules.items()
        if rule.search(path.read_text())
    ]


def test_one_function_decides_the_tiers() -> None:
    """Issue 32: which tiers a request gets is decided by calibrations.resolve_tiers alone;
    no other module reads the tier settings (PHOTOCLUSTER_LOW/MEDIUM/HIGH, INDEX_FLOOR) or
    the built-in calibrations itself."""
    rules = {
        "reads a tier setting": re.compile(
            r"\bsettings\.(low|medium|high|index_floor)\b|getattr\([a-z_.]*settings, "
        ),
        "reads a built-in calibration": re.compile(r"\b(BUILT_IN|UNCALIBRATED|built_in)\b"),
    }
    assert owned_by("photocluster.calibrations", rules) == [], "ask resolve_tiers"


def test_the_apis_enums_are_the_domains_values() -> None:
    """Issue 32: the API's named enums (OpenAPI components, the typed client's types) list
    exactly the domain's values, so a new linkage, tier or status cannot reach one and not
    the other."""
    from typing import get_args

    from photocluster.api import schemas
    from photocluster.config import LINKAGES, TIER_NAMES
    from photocluster.store.records import Status

    assert [m.value for m in schemas.Linkage] == list(LINKAGES)
    assert [m.value for m in schemas.TierName] == list(TIER_NAMES)
    shown = [s for s in get_args(Status) if s != "deleted"]  # deleted records are never shown
    assert [m.value for m in schemas.ImageStatus] == shown


def test_one_module_builds_and_parses_upload_keys() -> None:
    """Issue 32: the uploads' key layout ({prefix}{user_id}/{filename}) is built and taken
    apart in buckets.py alone; the routes, ingest and the gallery ask it."""
    rules = {
        "builds an upload key": re.compile(r"""f["'][^"']*\{[^}]*prefix[^}]*\}\{"""),
        "takes a key apart": re.compile(r"\bkey[a-z_]*\.(r?split|r?partition)\("),
    }
    assert owned_by("photocluster.buckets", rules) == [], "ask photocluster.buckets"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter with the project's contract on the package copied under ``root``."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("store/format.py", "import photocluster.api.schemas"),  # up the floors
        ("api/gallery.py", "import photocluster.ingest.events"),  # across one floor
    ],
)
def test_the_floor_contract_breaks_on_an_import_up_or_across(
    tmp_path: Path, module: str, line: str
) -> None:
    shutil.copytree(SRC, tmp_path / "photocluster", ignore=shutil.ignore_patterns("__pycache__"))
    assert lint_imports(tmp_path).returncode == 0  # the code as it is keeps it
    with (tmp_path / "photocluster" / module).open("a") as handle:
        handle.write(f"\n{line}  # noqa\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode != 0 and "BROKEN" in broken.stdout, broken.stdout[-2000:]


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("embedder/server.py", "import photocluster.quality.metrics"),  # down, but a tool
        ("embedder/onnx_encoder.py", "import photocluster.embedder.bake"),  # through bake
    ],
)
def test_the_service_contract_breaks_when_a_service_reaches_the_quality_tools(
    tmp_path: Path, module: str, line: str
) -> None:
    # The service images leave photocluster.quality out (issue 32): an import the floors
    # allow would fail only in a deployed image.
    shutil.copytree(SRC, tmp_path / "photocluster", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "photocluster" / module).open("a") as handle:
        handle.write(f"\n{line}  # noqa\n")
    broken = lint_imports(tmp_path)
    broken_contracts = broken.stdout.partition("Broken contracts")[2]
    assert "no service imports the quality tools" in broken_contracts, broken.stdout[-2000:]
