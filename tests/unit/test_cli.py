"""The photocluster command: import-embeddings and clusters, and their bad inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from photocluster import cli
from photocluster.cli import library as cli_library
from photocluster.clustering.tiers import cluster
from photocluster.config import Settings, get_settings
from photocluster.library import Library
from photocluster.store import Store
from tests.helpers.data import grouped_vectors


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, store_root: Path) -> Iterator[None]:
    monkeypatch.setenv("PHOTOCLUSTER_STORE_ROOT", str(store_root))
    monkeypatch.setenv("PHOTOCLUSTER_MODEL", "test-model")
    monkeypatch.setenv("PHOTOCLUSTER_STORE_FSYNC", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_then_clusters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rng: np.random.Generator
) -> None:
    ids, vectors, truth = grouped_vectors(rng, 3, 4, 5, dim=64, noise=0.3)
    npz = write_npz(tmp_path / "e.npz", ids=np.array(ids), embeddings=vectors)
    code, out, _ = run(capsys, "import-embeddings", "--user", "u1", str(npz))
    assert code == 0 and json.loads(out)["added"] == len(ids)
    code, out, _ = run(capsys, "clusters", "--user", "u1")
    result = json.loads(out)
    assert code == 0
    assert set(result) >= {"user_id", "n_images", "model", "tiers"}
    assert [t["name"] for t in result["tiers"]] == ["low", "medium", "high"]
    expected = sorted(
        sorted(i for i, g in zip(ids, truth, strict=True) if g == k) for k in range(3)
    )
    assert sorted(sorted(g["image_ids"]) for g in result["tiers"][0]["groups"]) == expected


def test_average_linkage_from_the_flag_or_the_environment(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids, vectors, _ = grouped_vectors(rng, 3, 4, 5, dim=64, noise=0.5)
    npz = write_npz(tmp_path / "e.npz", ids=np.array(ids), embeddings=vectors)
    run(capsys, "import-embeddings", "--user", "u1", str(npz))
    code, out, _ = run(capsys, "clusters", "--user", "u1", "--linkage", "average")
    flagged = json.loads(out)
    assert code == 0 and flagged["linkage"] == "average"
    cut_at = {t["name"]: t["threshold"] for t in flagged["tiers"]}
    expected = cluster(ids, vectors, cut_at, "average")
    assert [[g["image_ids"] for g in t["groups"]] for t in flagged["tiers"]] == [
        t.groups for t in expected
    ]
    monkeypatch.setenv("PHOTOCLUSTER_LINKAGE", "average")
    get_settings.cache_clear()
    code, out, _ = run(capsys, "clusters", "--user", "u1")
    assert code == 0 and json.loads(out) == flagged


def test_not_similar_splits_a_group_and_undo_restores_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rng: np.random.Generator
) -> None:
    ids, vectors, _ = grouped_vectors(rng, 1, 4, 3, dim=64, noise=0.3)
    run(
        capsys,
        "import-embeddings",
        "--user",
        "u1",
        str(write_npz(tmp_path / "e.npz", ids=np.array(ids), embeddings=vectors)),
    )

    def low_groups() -> list[list[str]]:
        code, out, _ = run(capsys, "clusters", "--user", "u1", "--tier", "low", "--limit", "5")
        assert code == 0
        return [g["image_ids"] for g in json.loads(out)["tiers"][0]["groups"]]

    assert low_groups() == [ids[:4]]
    code, out, _ = run(capsys, "not-similar", "--user", "u1", ids[0], ids[1])
    assert code == 0 and json.loads(out) == {"changed": 1, "total": 1}
    (group,) = low_groups()
    assert set(ids[2:4]) <= set(group) and len({ids[0], ids[1]} & set(group)) == 1
    code, out, _ = run(capsys, "not-similar", "--user", "u1", "--undo", ids[0], ids[1])
    assert code == 0 and json.loads(out) == {"changed": 1, "total": 0}
    assert low_groups() == [ids[:4]]
    code, _, err = run(capsys, "not-similar", "--user", "u1", ids[0], "nope")
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"ids": np.array(["a"])}, "missing array"),
        ({"ids": np.array(["a", "b"]), "embeddings": np.ones((1, 4))}, "2 ids but 1"),
        ({"ids": np.array([1, 2]), "embeddings": np.ones((2, 4))}, "array of strings"),
        ({"ids": np.array(["a", "b"]), "embeddings": np.ones(4)}, "2-D"),
        ({"ids": np.array(["a/..", "b"]), "embeddings": np.ones((2, 4))}, "not allowed"),
        ({"ids": np.array(["a", "b"]), "embeddings": np.array([[1, np.nan], [1, 1]])}, "NaN"),
        ({"ids": np.array(["a", "b", "a"]), "embeddings": np.eye(3)}, "more than once"),
    ],
)
def test_bad_npz_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    store_root: Path,
    arrays,
    message: str,
) -> None:
    npz = write_npz(tmp_path / "bad.npz", **arrays)
    code, _, err = run(capsys, "import-embeddings", "--user", "u1", str(npz))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not Store(store_root).exists("u1")


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "import-embeddings", "--user", "u1", "/nonexistent.npz")
    assert code == 2 and "no such file" in err


def test_not_an_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.npz"
    bad.write_text("hello")
    code, _, err = run(capsys, "import-embeddings", "--user", "u1", str(bad))
    assert code == 2 and "not a readable .npz" in err


def test_wrong_dimension_leaves_the_store_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store_root: Path
) -> None:
    good = write_npz(tmp_path / "g.npz", ids=np.array(["a"]), embeddings=np.ones((1, 8)))
    assert run(capsys, "import-embeddings", "--user", "u1", str(good))[0] == 0
    before = Store(store_root).paths("u1").data.read_bytes()
    bad = write_npz(tmp_path / "b.npz", ids=np.array(["b"]), embeddings=np.ones((1, 4)))
    code, _, err = run(capsys, "import-embeddings", "--user", "u1", str(bad))
    assert code == 2 and "dimension 4, expected 8" in err
    assert Store(store_root).paths("u1").data.read_bytes() == before


@pytest.mark.parametrize(
    "args", [["--low", "1.7"], ["--low", "0.9", "--medium", "0.8"], ["--high", "0"]]
)
def test_bad_thresholds_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    good = write_npz(tmp_path / "g.npz", ids=np.array(["a"]), embeddings=np.ones((1, 8)))
    run(capsys, "import-embeddings", "--user", "u1", str(good))
    code, _, err = run(capsys, "clusters", "--user", "u1", *args)
    assert code == 2 and "threshold" in err


@pytest.mark.parametrize("command", ["eval", "eval-verify"])
def test_bad_thresholds_stop_an_evaluation_before_anything_is_embedded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # the folder does not exist: the thresholds are checked first, not after the embedding
    code, _, err = run(capsys, command, str(tmp_path / "none"), "--high", "1.7")
    assert code == 2 and "threshold 'high' is 1.7" in err
    code, _, err = run(capsys, command, str(tmp_path / "none"), "--low", "0.9", "--high", "0.5")
    assert code == 2 and "higher tiers are stricter" in err


def test_unknown_user_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "clusters", "--user", "ghost")
    assert code == 2 and "no embeddings stored" in err


def test_path_traversing_user_exits_2(capsys: pytest.CaptureFixture[str], store_root: Path) -> None:
    code, _, err = run(capsys, "clusters", "--user", "../../etc")
    assert code == 2 and "not allowed" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["similar", "--user", "u1", "--image", "a", "-k", "0"], "k must be between 1 and 500"),
        (["similar", "--user", "u1", "--image", "a", "-k", "100000000"], "between 1 and 500"),
        (["similar", "--user", "u1", "--image", "a", "--min-score", "1.7"], "min_score"),
        (["clusters", "--user", "u1", "--min-size", "0"], "min_size must be between 1"),
        (["clusters", "--user", "u1", "--min-size", "10001"], "min_size must be between 1"),
    ],
)
def test_cli_limits_are_the_apis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    good = write_npz(tmp_path / "g.npz", ids=np.array(["a", "b"]), embeddings=np.eye(2, 8))
    run(capsys, "import-embeddings", "--user", "u1", str(good))
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err, err


def test_a_folder_where_a_store_file_should_be_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], store_root: Path
) -> None:
    Store(store_root).paths("u1").data.mkdir(parents=True)
    code, _, err = run(capsys, "clusters", "--user", "u1")
    assert code == 2 and "Is a directory" in err and len(err.strip().splitlines()) == 1


def test_token_signs_with_the_secret_of_a_running_up_folder(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jwt

    monkeypatch.delenv("PHOTOCLUSTER_JWT_SECRET", raising=False)
    code, _, err = run(capsys, "token", "--user", "alice")
    assert code != 0 and "PHOTOCLUSTER_JWT_SECRET" in err
    (tmp_path / "env.json").write_text(json.dumps({"PHOTOCLUSTER_JWT_SECRET": "s" * 32}))
    code, out, _ = run(capsys, "token", "--user", "alice", "--workdir", str(tmp_path))
    claims = jwt.decode(out.strip(), "s" * 32, algorithms=["HS256"], options={"verify_aud": False})
    assert code == 0 and claims["sub"] == "alice"
    code, _, err = run(capsys, "token", "--user", "alice", "--workdir", str(tmp_path / "none"))
    assert code != 0 and "env.json" in err
    workdir = ("--workdir", str(tmp_path))
    code, _, err = run(capsys, "token", "--user", "alice", "--ttl", "90000", *workdir)
    assert code != 0 and "longer than the API accepts" in err
    code, _, err = run(capsys, "token", "--user", "alice", "--ttl", "0", *workdir)
    assert code != 0 and "at least a second" in err
    monkeypatch.setenv("PHOTOCLUSTER_JWT_AUDIENCE", "app")
    monkeypatch.setenv("PHOTOCLUSTER_JWT_ISSUER", "https://issuer.example")
    get_settings.cache_clear()
    code, out, _ = run(capsys, "token", "--user", "alice", *workdir)
    get_settings.cache_clear()
    claims = jwt.decode(out.strip(), "s" * 32, algorithms=["HS256"], audience="app")
    assert code == 0 and claims["iss"] == "https://issuer.example"


def test_an_import_streams_batches_and_builds_the_graph_once(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    """Batches of 7: the store grows a batch at a time, the graph is built at the end and
    equals the one a single write builds."""
    monkeypatch.setattr(cli_library, "BATCH", 7)
    ids, vectors, _ = grouped_vectors(rng, 4, 5, 6, dim=32, noise=0.4)
    npz = write_npz(tmp_path / "e.npz", ids=np.array(ids), embeddings=vectors)
    code, out, _ = run(capsys, "import-embeddings", "--user", "u1", str(npz))
    assert code == 0 and json.loads(out)["added"] == len(ids) == json.loads(out)["n_images"]
    imported = Library.from_settings(settings)
    assert imported.stats("u1").graph_fresh
    whole = Library.from_settings(settings.model_copy(update={"store_root": tmp_path / "one"}))
    whole.write("u1", settings.model, ids, vectors)
    for linkage in ("average", "complete"):
        mine, theirs = (
            imported.clusters("u1", linkage=linkage),
            whole.clusters("u1", linkage=linkage),
        )
        assert mine.tiers == theirs.tiers and mine.n_images == theirs.n_images


def test_an_import_past_the_largest_library_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_MAX_IMAGES_PER_USER", "3")
    get_settings.cache_clear()
    npz = write_npz(tmp_path / "e.npz", ids=np.array(list("abcd")), embeddings=np.eye(4))
    code, _, err = run(capsys, "import-embeddings", "--user", "u1", str(npz))
    assert code == 2 and "3 photos" in err
    assert not Store(get_settings().store_root).exists("u1")


def test_an_import_names_a_bad_row_by_its_place_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_library, "BATCH", 4)
    embeddings = np.ones((10, 3))
    embeddings[9, 1] = np.nan  # in the third batch
    npz = write_npz(tmp_path / "e.npz", ids=np.array(list("abcdefghij")), embeddings=embeddings)
    code, _, err = run(capsys, "import-embeddings", "--user", "u1", str(npz))
    assert code == 2 and "embedding #9 has NaN" in err


@pytest.mark.parametrize("layout", ["fortran", "compressed"])
def test_an_import_reads_any_npz_numpy_writes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    rng: np.random.Generator,
    layout: str,
) -> None:
    monkeypatch.setattr(cli_library, "BATCH", 3)
    ids, vectors, _ = grouped_vectors(rng, 2, 4, 3, dim=16, noise=0.3)
    path = tmp_path / "e.npz"
    if layout == "fortran":
        np.savez(path, ids=np.array(ids), embeddings=np.asfortranarray(vectors))
    else:
        np.savez_compressed(path, ids=np.array(ids), embeddings=vectors)
    code, out, _ = run(capsys, "import-embeddings", "--user", "u1", str(path))
    assert code == 0 and json.loads(out)["added"] == len(ids)
    stored = Store(get_settings().store_root).read("u1")
    assert np.allclose(stored.vectors, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def test_an_empty_import_changes_nothing_and_says_how_many_there_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = write_npz(tmp_path / "n.npz", ids=np.array([], dtype="U1"), embeddings=np.ones((0, 4)))
    code, out, _ = run(capsys, "import-embeddings", "--user", "new", str(empty))
    assert code == 0 and json.loads(out)["n_images"] == 0
    assert not Store(get_settings().store_root).paths("new").lock.exists()
    two = write_npz(tmp_path / "t.npz", ids=np.array(["a", "b"]), embeddings=np.eye(2, 4))
    run(capsys, "import-embeddings", "--user", "u1", str(two))
    code, out, _ = run(capsys, "import-embeddings", "--user", "u1", str(empty))
    assert code == 0 and json.loads(out)["n_images"] == 2
