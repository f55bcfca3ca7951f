"""The real photographs installed by Debian packages (photocluster.quality.photos)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from photocluster.quality import photos
from photocluster.quality.photos import CATALOGUE, PACKAGES, Photo, load

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"


@pytest.mark.slow
@pytest.mark.skipif(
    bool(photos.missing_packages()),
    reason=f"Debian packages {photos.missing_packages()} are not installed (make system-tools)",
)
def test_every_listed_photo_loads_upright_rgb_within_max_side() -> None:
    assert photos.real_photos() == list(CATALOGUE)
    for photo in CATALOGUE:
        image = load(photo, max_side=256)
        assert image.mode == "RGB", photo.name
        assert max(image.size) == 256, photo.name
        assert min(image.size) >= 128, photo.name  # no sliver: none is wider than 16:9


def test_names_are_unique_slugs_and_every_photo_is_credited() -> None:
    names = [photo.name for photo in CATALOGUE]
    assert len(set(names)) == len(names)
    for photo in CATALOGUE:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", photo.name), photo.name
        assert photo.credit and photo.licence, photo.name
        assert photo.package in PACKAGES, photo.name


def test_makefile_system_tools_installs_every_photo_package() -> None:
    text = MAKEFILE.read_text().replace("\\\n", " ")  # join continued lines
    line = re.search(r"^PHOTO_PACKAGES := (.+)$", text, re.MULTILINE)
    assert line is not None
    assert sorted(line.group(1).split()) == sorted(PACKAGES)


def test_a_missing_package_is_reported_and_its_photos_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = tmp_path / "present.jpg"
    Image.new("RGB", (64, 48), "red").save(present)
    here = Photo("here", present, "me", "CC0-1.0", photos.MATE)
    gone = Photo("gone", tmp_path / "gone.jpg", "me", "CC0-1.0", photos.PLASMA)
    monkeypatch.setattr(photos, "CATALOGUE", (here, gone))

    assert photos.real_photos() == [here]
    assert photos.missing_packages() == [photos.PLASMA]


def test_load_names_the_package_to_install_for_a_missing_file(tmp_path: Path) -> None:
    gone = Photo("gone", tmp_path / "gone.jpg", "me", "CC0-1.0", photos.LXQT)
    with pytest.raises(FileNotFoundError, match="lxqt-themes"):
        load(gone)


def test_load_refuses_a_non_positive_max_side(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(ValueError, match="max_side"):
        load(Photo("p", path, "me", "CC0-1.0", photos.MATE), max_side=0)


def test_load_applies_exif_orientation_and_downscales_a_large_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90 degrees to view
    Image.new("RGB", (3000, 2000), "blue").save(path, exif=exif)

    image = load(Photo("sideways", path, "me", "CC0-1.0", photos.MATE), max_side=1024)

    assert image.size == (683, 1024)
    assert image.mode == "RGB"


def test_load_keeps_a_photo_smaller_than_max_side_at_its_size(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.new("L", (300, 200), 128).save(path)
    image = load(Photo("small", path, "me", "CC0-1.0", photos.MATE), max_side=1024)
    assert image.size == (300, 200)
    assert image.mode == "RGB"


def test_credits_page_lists_every_photo_with_its_photographer_and_licence() -> None:
    credits = (MAKEFILE.parent / "docs" / "PHOTO-CREDITS.md").read_text()
    for photo in CATALOGUE:
        row = f"| {photo.name} | {photo.credit} | {photo.licence} | {photo.package} |"
        assert row in credits, photo.name
