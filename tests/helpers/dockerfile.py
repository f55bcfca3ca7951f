"""Dockerfiles read, and their installs replayed, on machines with no Docker engine.

:func:`replay` follows a Dockerfile's own steps into a folder that stands for the image's
``/``: each COPY from the build context (``.dockerignore`` and ``--exclude`` applied) and
the ``pip install`` whose packages the final image holds, run by this machine's pip. Other
commands (``rm``, ``mkdir``, bake-model) are not run: the tests ask what the image's
Python holds and loads.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: What the base images set before our steps: the Lambda base image's task root, a PATH.
BASE_IMAGE_ENV = {"LAMBDA_TASK_ROOT": "/var/task", "PATH": "/usr/local/bin:/usr/bin:/bin"}

#: Options of our pip installs that say where packages come from or whether they are
#: cached, with their count of values: this machine's pip configuration decides those.
SOURCE_OPTIONS = {"--no-cache-dir": 0, "--extra-index-url": 1, "--index-url": 1}

#: Options that decide what is installed where: replayed as written.
INSTALL_OPTIONS = {"-c": 1, "--constraint": 1, "--target": 1, "--no-deps": 0}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    """The instructions of each stage, its FROM first."""
    out: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(path):
        if keyword == "FROM":
            out.append([])
        assert out, f"{keyword} before the first FROM: not replayed"
        out[-1].append((keyword, args))
    return out


@dataclass
class Image:
    """The replayed image: where its pip install put the packages, how its Python runs."""

    root: Path
    site: Path
    python: list[str]
    env: dict[str, str]
    #: Where each source the Dockerfile copies from the build context is in the image.
    copied: dict[str, Path] = field(default_factory=dict)

    def python_run(self, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """The image's Python on ``argv``, with nothing of this machine's on its path."""
        return subprocess.run(
            [*self.python, *argv],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.root,
            env={"PATH": "/usr/bin:/bin", **self.env, **env},
            timeout=120,
        )


@dataclass
class _Replay:
    context: Path
    root: Path
    shipped: set[str]
    vars: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    images: list[Image] = field(default_factory=list)
    copied: dict[str, Path] = field(default_factory=dict)

    def at(self, image_path: str) -> Path:
        return self.root / os.path.join(self.workdir, image_path).lstrip("/")

    def expand(self, text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: self.vars[m[1] or m[2]], text)

    def stage(self) -> None:
        self.vars, self.env, self.workdir = dict(BASE_IMAGE_ENV), {}, "/"

    def assign(self, keyword: str, args: str) -> None:
        for item in shlex.split(args):
            name, equals, value = item.partition("=")
            assert equals or keyword == "ARG", f"ENV {args}: only the NAME=value form"
            if equals:
                self.vars[name] = self.expand(value)
                if keyword == "ENV":
                    self.env[name] = self.vars[name]

    def copy(self, args: str) -> None:
        flags, words = _flags(shlex.split(self.expand(args)))
        if "from" in flags:
            return  # one filesystem for all stages: shipped_paths() checks the paths agree
        *sources, dest = words
        for source in sources:
            origin = self.context / source
            if origin.is_dir():  # a folder's contents go into dest, as Docker copies them
                target = self.at(dest)
                ignore = _excluded(self.context, origin, flags.get("exclude", []))
                shutil.copytree(origin, target, ignore=ignore, dirs_exist_ok=True)
            else:
                into = dest.endswith("/") or len(sources) > 1
                target = self.at(dest) / origin.name if into else self.at(dest)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
            self.copied[source] = target

    def run(self, args: str) -> None:
        for command in self.expand(args).split("&&"):
            argv = shlex.split(command)
            if len(argv) > 1 and Path(argv[0]).name == "pip" and argv[1] == "install":
                self.pip_install(argv)

    def pip_install(self, argv: list[str]) -> None:
        """One ``pip install`` whose destination the final image holds (not the bake venv)."""
        options, requirements = _pip_arguments(argv[2:])
        venv = str(Path(argv[0]).parents[1]) if argv[0] != "pip" else None
        destination = options.get("--target") or venv
        assert destination, f"an install into the base image's own Python: {argv}"
        if self.shipped and destination not in self.shipped:
            return
        pip = [sys.executable, "-m", "pip"]
        if venv:
            python = self.at(venv) / "bin" / "python"
            subprocess.run(
                [sys.executable, "-m", "venv", "--without-pip", python.parents[1]], check=True
            )
            pip += ["--python", str(python)]
        words = [item for pair in options.items() for item in pair if item] + requirements
        # --no-compile: the .pyc files change nothing the tests ask, and take a third of the time.
        install = [*pip, "install", "--quiet", "--no-compile", *map(self.on_root, words)]
        subprocess.run(install, check=True, cwd=self.at("."))
        if venv:
            (site,) = python.parents[1].glob("lib/python*/site-packages")
            self.images.append(Image(self.root, site, [str(python)], {}))
        else:  # --target: the Lambda runtime puts its task root on the path; -S: nothing else
            site = self.at(destination)
            image = Image(self.root, site, [sys.executable, "-S"], {"PYTHONPATH": str(site)})
            self.images.append(image)

    def on_root(self, word: str) -> str:
        """An image path in a pip argument, as its place under root; relative ones stay."""
        return str(self.root) + word if word.startswith("/") else word


def _flags(words: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """An instruction's ``--name=value`` flags, and its other words."""
    flags: dict[str, list[str]] = {}
    rest = []
    for word in words:
        if word.startswith("--"):
            name, _, value = word[2:].partition("=")
            flags.setdefault(name, []).append(value)
        else:
            rest.append(word)
    return flags, rest


def _pip_arguments(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """A pip install's options that decide what goes where, and its requirements."""
    options: dict[str, str] = {}
    requirements = []
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word in SOURCE_OPTIONS:
            del rest[: SOURCE_OPTIONS[word]]
        elif word in INSTALL_OPTIONS:
            options[word] = rest.pop(0) if INSTALL_OPTIONS[word] else ""
        else:
            assert not word.startswith("-"), f"pip option {word}: unknown to the replay"
            requirements.append(word)
    return options, requirements


def _pattern(exclude: str) -> re.Pattern[str]:
    """A .dockerignore or ``--exclude`` pattern as Docker matches it: ``*`` and ``?``
    within one path segment, ``**/`` any number of folders (none included)."""
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", exclude)
    wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts))


def _excluded(
    context: Path, origin: Path, excludes: list[str]
) -> Callable[[str, list[str]], set[str]]:
    """shutil.copytree's ignore for a COPY: the context's .dockerignore (paths from the
    context) and the COPY's --exclude patterns (paths from the copied folder)."""
    lines = (context / ".dockerignore").read_text().splitlines()
    ignored = [line.strip().lstrip("/") for line in lines if line.strip()[:1] not in ("", "#")]
    assert not any(line.startswith("!") for line in ignored), "no exceptions: not replayed"
    from_context = [_pattern(line) for line in ignored]
    from_origin = [_pattern(exclude) for exclude in excludes]

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        return {
            name
            for name in names
            if any(p.fullmatch((here / name).relative_to(context).as_posix()) for p in from_context)
            or any(p.fullmatch((here / name).relative_to(origin).as_posix()) for p in from_origin)
        }

    return ignore


def shipped_paths(dockerfile: Path) -> set[str]:
    """The folders the final stage takes from earlier ones (``COPY --from``)."""
    paths = set()
    for keyword, args in stages(dockerfile)[-1]:
        flags, words = _flags(args.split())
        if keyword == "COPY" and "from" in flags:
            source, dest = words
            assert source == dest, f"the replay keeps one filesystem: {source} -> {dest}"
            paths.add(dest)
    return paths


def replay(dockerfile: Path, context: Path, root: Path) -> Image:
    """Replay ``dockerfile``'s COPY steps and the pip install the image ships under
    ``root``: the packages its Python finds, and the environment its final stage sets."""
    build = _Replay(context, root, shipped_paths(dockerfile))
    for stage in stages(dockerfile):
        build.stage()
        for keyword, args in stage:
            if keyword in ("ARG", "ENV"):
                build.assign(keyword, args)
            elif keyword == "WORKDIR":
                build.workdir = build.expand(args)
            elif keyword == "COPY":
                build.copy(args)
            elif keyword == "RUN":
                build.run(args)
    (image,) = build.images
    image.env.update({k: v for k, v in build.env.items() if k != "PATH"})
    image.copied = build.copied
    return image
