from __future__ import annotations

import pytest

from photocluster.errors import InvalidId
from photocluster.ids import IMAGE_ID_MAX, validate_image_id, validate_user_id


@pytest.mark.parametrize(
    "value",
    ["u1", "a-b_c.d", "0" * 128, "IMG_20231201_123456", "550e8400-e29b-41d4-a716-446655440000"],
)
def test_accepts_safe_ids(value: str) -> None:
    assert validate_user_id(value) == value
    assert validate_image_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "..",
        "../etc",
        "a/b",
        "a\\b",
        ".hidden",
        "a b",
        "a\x00b",
        "é",
        "ａｂ",
        "a" * (IMAGE_ID_MAX + 1),
        "%2e%2e",
        "a/../b",
        "\u202eabc",
        "a\nb",
    ],
)
def test_refuses_unsafe_ids(value: str) -> None:
    with pytest.raises(InvalidId):
        validate_user_id(value)
    with pytest.raises(InvalidId):
        validate_image_id(value)


def test_refuses_non_strings() -> None:
    with pytest.raises(InvalidId, match="must be a string"):
        validate_user_id(42)


def test_error_message_names_the_rule() -> None:
    with pytest.raises(InvalidId, match="letters, digits"):
        validate_image_id("../x")
