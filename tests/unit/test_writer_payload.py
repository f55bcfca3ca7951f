"""The writer's upsert payload carries each vector as a list of numbers (``embedding``) or
packed, base64 of its little-endian float32 values (``embedding_f32``: what ingest sends,
a quarter of the JSON's size and no float to print or parse); the writer refuses what is
neither, and stores both the same."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from photocluster.ids import decode_ids
from photocluster.images import ImageLimits
from photocluster.ingest.batch import Item
from photocluster.ingest.events import ObjectRef
from photocluster.ingest.pipeline import Ingest, _writer_payload
from photocluster.ingest.reporting import LogReporter
from photocluster.ingest.writer import handle_write, packed_vector, refused_packed_vectors
from photocluster.library import Library

MODEL = "test-model"


def upsert(**item: Any) -> dict[str, Any]:
    return {"op": "upsert", "user_id": "alice", "model": MODEL, "items": [item]}


def packed(values: list[float], dtype: str = "<f4") -> str:
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode()


def test_a_packed_vector_is_stored_as_its_list_would_be(library: Library) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(2, 1379)).astype(np.float32)
    first = handle_write(library, upsert(image_id="a.jpg", embedding=vectors[0].tolist()), MODEL)
    second = handle_write(
        library, upsert(image_id="b.jpg", embedding_f32=packed(vectors[1])), MODEL
    )
    assert first["ok"] and second["ok"], (first, second)
    stored = library.store.read("alice")
    found = stored.rows.take(np.arange(len(stored.ids)))
    rows = dict(zip(decode_ids(stored.ids), found, strict=True))
    for name, vector in zip(("a.jpg", "b.jpg"), vectors, strict=True):
        unit = vector / np.linalg.norm(vector.astype(np.float64))
        assert np.allclose(rows[name], unit, atol=1e-7)


@pytest.mark.parametrize(
    ("item", "error_type", "says"),
    [
        ({"embedding_f32": "not base64!"}, "InvalidRequest", "base64"),
        ({"embedding_f32": base64.b64encode(b"12345").decode()}, "InvalidRequest", "float32"),
        ({"embedding_f32": ""}, "InvalidRequest", "float32"),
        ({}, "InvalidRequest", "embedding"),
        ({"embedding": [0.6, 0.8], "embedding_f32": packed([0.6, 0.8])}, "InvalidRequest", "one"),
        ({"embedding_f32": packed([1.0, float("nan"), 0.0])}, "InvalidVector", ""),
        ({"embedding_f32": packed([1.0, float("inf"), 0.0])}, "InvalidVector", ""),
        ({"embedding_f32": "A" * 400_000}, "InvalidRequest", ""),  # over 65,536 values
    ],
)
def test_a_vector_that_is_not_one_is_refused_and_nothing_is_stored(
    library: Library, item: dict[str, Any], error_type: str, says: str
) -> None:
    answer = handle_write(library, upsert(image_id="a.jpg", **item), MODEL)
    assert answer["ok"] is False and answer["error_type"] == error_type, answer
    assert says in answer["error"]
    assert not library.store.exists("alice")


def test_a_packed_vector_of_another_length_than_the_stored_ones_is_refused(
    library: Library,
) -> None:
    assert handle_write(library, upsert(image_id="a.jpg", embedding_f32=packed([0.6, 0.8])), MODEL)[
        "ok"
    ]
    answer = handle_write(
        library, upsert(image_id="b.jpg", embedding_f32=packed([1.0, 0, 0])), MODEL
    )
    assert answer["error_type"] == "DimensionMismatch", answer


def test_packing_keeps_every_bit_of_a_float32_vector() -> None:
    vector = np.random.default_rng(3).normal(size=1379).astype(np.float32)
    assert np.array_equal(packed_vector(packed(vector.tolist())), vector)
    big_endian = packed(vector.tolist(), dtype=">f4")  # the format says little-endian
    assert not np.array_equal(packed_vector(big_endian), vector)


def test_ingest_sends_the_vector_packed() -> None:
    vector = np.random.default_rng(5).normal(size=16).astype(np.float32)
    item = Item(0, ObjectRef("bucket", "uploads/alice/a.jpg", "alice", "a.jpg", "upsert"))
    item.embedding = vector
    item.model = MODEL
    (sent,) = _writer_payload([item])["items"]
    assert "embedding" not in sent
    assert np.array_equal(packed_vector(sent["embedding_f32"]), vector)


class _OldItem(BaseModel):
    """The writer's item before the packed form (e61fe08), as it validated it."""

    model_config = ConfigDict(extra="forbid")
    image_id: str
    embedding: list[float] = Field(min_length=1, max_length=65536)
    key: str | None = None
    modified: float | None = None
    features: str | None = None


@dataclass
class _OldWriter:
    """A writer deployed before the packed form, over the real library: it refuses an item
    without ``embedding`` the way that release answered (checked against its code)."""

    library: Library
    runs_here: bool = True
    calls: int = 0

    def write(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        event = json.loads(json.dumps(payload))
        for index, item in enumerate(event["items"]):
            try:
                _OldItem.model_validate(item)
            except ValidationError as exc:
                where = ".".join(str(part) for part in exc.errors()[0]["loc"])
                error = f"upsert.items.{index}.{where}: {exc.errors()[0]['msg']}"
                return {"ok": False, "error_type": "InvalidRequest", "error": error}
        return handle_write(self.library, event, MODEL)


def test_a_writer_older_than_ingest_gets_the_vectors_as_lists(library: Library) -> None:
    """A rollback puts the writer back before ingest (Terraform: ingest's environment names
    the writer): for those seconds the new ingest meets the old writer, and no photo may
    fail for it."""
    writer = _OldWriter(library)
    ingest = Ingest(None, None, writer, LogReporter(), ImageLimits())  # type: ignore[arg-type]
    vector = np.random.default_rng(9).normal(size=8).astype(np.float32)
    item = Item(0, ObjectRef("bucket", "uploads/alice/a.jpg", "alice", "a.jpg", "upsert"))
    item.embedding, item.model = vector, MODEL
    refused = writer.write(_writer_payload([item]))
    assert refused["error"] == "upsert.items.0.embedding: Field required"  # that release's words
    assert refused_packed_vectors(refused)
    ingest._write([item])
    assert item.outcome == "ok", item.reason
    assert writer.calls == 3 and library.store.exists("alice")
    stored = library.store.read("alice").rows.take(np.arange(1))[0]
    assert np.allclose(stored, vector / np.linalg.norm(vector.astype(np.float64)), atol=1e-7)


def test_only_an_older_writers_refusal_sends_lists_again() -> None:
    assert not refused_packed_vectors({"ok": True})
    new_writer = {"ok": False, "error_type": "InvalidRequest"}
    for error in (
        "upsert.items.0: Value error, give the vector as one of embedding or ...",
        "upsert.items.0.embedding_f32: Value error, not base64",
    ):
        assert not refused_packed_vectors({**new_writer, "error": error})
