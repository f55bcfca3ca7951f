"""The upload route's filename rules, over any name (issue 33: a fuzz run of the rules)."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from photocluster.buckets import HIDDEN_CATEGORIES, KEY_MAX_BYTES, upload_key
from photocluster.errors import InvalidEvent, UnsupportedImage

PREFIX = "uploads/"


@given(st.text(max_size=300), st.sampled_from([".jpg", ".png", ".JPEG", ""]))
def test_a_name_is_refused_or_becomes_a_key_under_the_users_prefix(stem: str, ext: str) -> None:
    name = stem + ext
    try:
        key = upload_key(PREFIX, "alice", name, "image/png" if ext == ".png" else "image/jpeg")
    except (InvalidEvent, UnsupportedImage) as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert len(refusal) < 2 * len(repr(name)) + 200  # says why, bounded by the name
        return
    last = key.removeprefix(f"{PREFIX}alice/")
    assert key.startswith(f"{PREFIX}alice/") and "/" not in last and "\\" not in last
    assert last not in ("", ".", "..")
    assert not any(unicodedata.category(c) in HIDDEN_CATEGORIES for c in last)
    assert len(key.encode("utf-8")) <= KEY_MAX_BYTES
    assert last == unicodedata.normalize("NFC", name)
