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


# --------------------------------------------------------------------- key -> image id

import hashlib  # noqa: E402
import unicodedata  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from photocluster.ids import filename_of_image_id, image_id_for_filename  # noqa: E402

FILENAMES = st.text(min_size=1, max_size=300).filter(lambda s: "/" not in s)


def test_a_photo_and_its_export_with_another_extension_get_two_ids() -> None:
    # Regression: IMG_0001.jpg and IMG_0001.png used to share the id IMG_0001, so the
    # second upload replaced the first's embedding.
    assert image_id_for_filename("IMG_0001.jpg") != image_id_for_filename("IMG_0001.png")


@pytest.mark.parametrize(
    ("filename", "image_id"),
    [
        ("IMG_0001.jpg", "IMG_0001.jpg"),
        ("IMG_0001.HEIC", "IMG_0001.HEIC"),
        ("Beach day é.jpg", "Beach~20day~20~C3~A9.jpg"),
        ("a~b.png", "a~7Eb.png"),
        (".hidden.jpg", "~2Ehidden.jpg"),
        ("日本.webp", "~E6~97~A5~E6~9C~AC.webp"),
    ],
)
def test_the_documented_examples(filename: str, image_id: str) -> None:
    assert image_id_for_filename(filename) == image_id
    assert filename_of_image_id(image_id) == filename


def test_nfd_and_nfc_spellings_of_a_name_are_one_image() -> None:
    name = "Beach day é.jpg"
    nfd, nfc = unicodedata.normalize("NFD", name), unicodedata.normalize("NFC", name)
    assert nfd != nfc
    assert image_id_for_filename(nfd) == image_id_for_filename(nfc)


def test_a_long_name_ends_in_the_digest_of_the_whole_name() -> None:
    name = "é" * 200 + ".jpg"
    image_id = image_id_for_filename(name)
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    assert len(image_id) <= IMAGE_ID_MAX and image_id.endswith("~~" + digest)
    assert filename_of_image_id(image_id) is None  # not reversible: look the key up


@given(FILENAMES)
def test_every_name_gives_a_valid_id(filename: str) -> None:
    assert validate_image_id(image_id_for_filename(filename))


@given(FILENAMES, FILENAMES)
def test_two_different_names_never_share_an_id(a: str, b: str) -> None:
    if unicodedata.normalize("NFC", a) != unicodedata.normalize("NFC", b):
        assert image_id_for_filename(a) != image_id_for_filename(b)


NEAR_MISSES = st.sampled_from(
    [
        lambda n: n + ".png",
        lambda n: n + " ",
        lambda n: n.swapcase(),
        lambda n: n.replace(" ", "~20"),
        lambda n: "." + n,
        lambda n: n + "é" * 60,
    ]
)


@given(FILENAMES, NEAR_MISSES)
def test_names_that_differ_a_little_still_get_two_ids(filename: str, change: object) -> None:
    assert callable(change)
    other = change(filename)
    if unicodedata.normalize("NFC", other) != unicodedata.normalize("NFC", filename):
        assert image_id_for_filename(other) != image_id_for_filename(filename)


@given(FILENAMES)
def test_the_id_gives_the_name_back_unless_it_was_cut(filename: str) -> None:
    image_id = image_id_for_filename(filename)
    back = filename_of_image_id(image_id)
    assert back == unicodedata.normalize("NFC", filename) or ("~~" in image_id and back is None)


@pytest.mark.parametrize("image_id", ["~E9", "a~2Fb~", "~7e", "a~~b"])
def test_an_id_no_name_gives_has_no_name(image_id: str) -> None:
    assert filename_of_image_id(image_id) is None
