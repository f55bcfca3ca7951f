"""Real photographs installed by Debian packages, as sources for the evaluation set.

The scikit-image and scikit-learn samples are few and clean; these are 53 photographs
(landscapes, water, plants, animals, buildings, objects, indoor scenes, one portrait) from
the wallpaper sets of five Debian packages and matplotlib's sample data, which
`make system-tools` installs. The list is curated by hand, not globbed, so every machine
with the packages gets the same set: each entry is the file, its photographer and licence
as the package's copyright file or wallpaper metadata states them. docs/PHOTO-CREDITS.md
is the same list for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

#: Where Debian installs the packages' data.
SHARE = Path("/usr/share")

MATE = "mate-backgrounds"
LOMIRI = "lomiri-wallpapers-16.04"
PALAPELI = "palapeli-data"
LXQT = "lxqt-themes"
PLASMA = "plasma-workspace-wallpapers"
MATPLOTLIB = "python-matplotlib-data"

#: The Debian packages the photographs come from (the Makefile's system-tools installs them).
PACKAGES = (MATE, LOMIRI, PALAPELI, LXQT, PLASMA, MATPLOTLIB)


@dataclass(frozen=True)
class Photo:
    """One photograph: a unique slug, where its package installs it, and whose it is."""

    name: str
    path: Path
    credit: str
    licence: str
    package: str


def _plasma(name: str, folder: str, credit: str, licence: str = "LGPL-3.0") -> Photo:
    image = f"wallpapers/{folder}/contents/images/2560x1600.jpg"
    return Photo(name, SHARE / image, credit, licence, PLASMA)


def _lxqt(name: str, file: str, credit: str) -> Photo:
    # The folder's License file puts every wallpaper under CC BY-SA 3.0.
    return Photo(name, SHARE / "lxqt/wallpapers" / file, credit, "CC-BY-SA-3.0", LXQT)


def _mate(name: str, file: str, credit: str) -> Photo:
    return Photo(name, SHARE / "backgrounds/mate/nature" / file, credit, "GPL-2.0+", MATE)


def _lomiri(name: str, file: str, credit: str, licence: str) -> Photo:
    return Photo(name, SHARE / "backgrounds" / file, credit, licence, LOMIRI)


def _palapeli(name: str, file: str, credit: str, licence: str) -> Photo:
    return Photo(name, SHARE / "palapeli/collection" / file, credit, licence, PALAPELI)


_STEFONARCH = "stefonarch (LXQt)"
_SAUKONPAA = "Risto Saukonpää"
_BERASATEGI = "Aitzol Berasategi, 2018"
_NERLICH = "Peter Nerlich, 2018"
_FREESPACE = 'Trevor "Freespace", 2018'

#: Every curated photograph, in a fixed order (evaluation sets are seeded over this order).
CATALOGUE: tuple[Photo, ...] = (
    _mate("water-drop", "Aqua.jpg", "Charles Barbin, 2008"),
    _mate("leaf-veins", "Blinds.jpg", "Lennart Poettering, Andrea Cimitan, 2008"),
    _mate("dune-grass", "Dune.jpg", "Marco Cogoni 2007, Hylke Bons 2008"),
    _mate("orange-petals", "FreshFlower.jpg", "Jens Ansorg, 2005"),
    _mate("red-marigold", "Garden.jpg", "Charles Barbin, 2008"),
    _mate("green-meadow", "GreenMeadow.jpg", "Timothy Schellhase 2005, Lapo Calamandrei 2008"),
    _mate("ladybird", "LadyBird.jpg", "Charles Barbin, 2008"),
    _mate("rain-drops", "RainDrops.jpg", '"blackcombwhistler07", 2008'),
    _mate("storm-road", "Storm.jpg", "Sergey Nazarov, 2008"),
    _mate("dandelion-seeds", "TwoWings.jpg", "Charles Barbin, Hylke Bons, 2008"),
    _mate("wood-planks", "Wood.jpg", "Jean-François Fortin Tam, 2008"),
    _mate("yellow-flower", "YellowFlower.jpg", "Charles Barbin, 2008"),
    _lomiri(
        "bridge-cables", "Bridge_by_Sander_Klootwijk.jpg", "Sander Klootwijk, 2018", "CC-BY-SA-4.0"
    ),
    _lomiri("tree-branches", "Dragonfly_by_Bolly.jpg", '"Bolly", 2018', "CC-BY-SA-4.0"),
    _lomiri("fig-in-bowl", "Picture_0B_by_freespace.jpg", _FREESPACE, "CC-BY-4.0"),
    _lomiri("paint-brushes", "Picture_1A_by_freespace.jpg", _FREESPACE, "CC-BY-4.0"),
    _lomiri("living-room", "Wine_by_Jakkub_Mede.jpg", "Jakub Mede, 2018", "CC-BY-4.0"),
    _lomiri("autumn-mountain", "aitzgorri_by_Aitzol_Berasategi.jpg", _BERASATEGI, "CC-BY-4.0"),
    _lomiri("toy-bird-lamps", "free_by_Peter_Nerlich.jpg", _NERLICH, "CC-BY-SA-4.0"),
    _lomiri("dogs-at-door", "friends_by_Aitzol_Berasategi.jpg", _BERASATEGI, "CC-BY-4.0"),
    _lomiri("wall-clock", "greentock_by_Peter_Nerlich.jpg", _NERLICH, "CC-BY-SA-4.0"),
    _lomiri("forest-stream", "life_by_Aitzol_Berasategi.jpg", _BERASATEGI, "CC-BY-4.0"),
    _lomiri("mountain-path", "picosdeeuropa_by_Aitzol_Berasategi.jpg", _BERASATEGI, "CC-BY-4.0"),
    _lomiri(
        "dandelion-field",
        "seeding_by_Clements_Engelhardt.jpg",
        "Clemens Engelhardt, 2018",
        "CC0-1.0",
    ),
    _lomiri("sunset-hill", "sunset_by_Aitzol_Berasategi.jpg", _BERASATEGI, "CC-BY-4.0"),
    _palapeli("castle", "castle-maintenon.jpg", "Eric Pouhier (Wikimedia Commons)", "GFDL"),
    _palapeli(
        "night-bridge", "cincinnati-bridge.jpg", "Derek Jensen (Wikimedia Commons)", "public-domain"
    ),
    _palapeli(
        "citrus-slices", "citrus-fruits.jpg", "US Department of Agriculture", "public-domain"
    ),
    _palapeli(
        "honey-bee", "european-honey-bee.jpg", "John Severns (Wikimedia Commons)", "public-domain"
    ),
    _palapeli(
        "chameleon",
        "panther-chameleon-female.jpg",
        "B. Navez and others (Wikimedia Commons)",
        "GFDL",
    ),
    _lxqt(
        "butterfly-meadow",
        "Butterfly-Kenneth-Wimer.jpg",
        "Kenneth Wimer (file name), LXQt Project Team",
    ),
    _lxqt("cloud-sunset", "after-the-rain.jpg", _STEFONARCH),
    _lxqt("apple-blossom", "appleflower.png", _STEFONARCH),
    _lxqt("sun-beam", "beam.png", _STEFONARCH),
    _lxqt("swallowtail", "butterfly.png", _STEFONARCH),
    _lxqt("cloud-sky", "cloud.png", "LXQt Project Team"),
    _lxqt("grass-drop", "drop.png", _STEFONARCH),
    _lxqt("wildflowers", "flowers.png", _STEFONARCH),
    _lxqt("fog-field", "fog.jpg", _STEFONARCH),
    _lxqt("green-hills", "this-is-not-windows.jpg", _STEFONARCH),
    _lxqt("valendas-mountains", "Valendas.png", "LXQt Project Team"),
    _plasma("lake-jetty", "BytheWater", "Maciej Wiklo"),
    _plasma("misty-pier", "ColdRipple", _SAUKONPAA),
    _plasma("cups", "ColorfulCups", "Dmitri Popov"),
    _plasma("blue-lake", "DarkestHour", _SAUKONPAA),
    _plasma("rowing-boats", "EveningGlow", "Ian Hex"),
    _plasma("fallen-leaf", "FallenLeaf", "Martin Klapetek"),
    _plasma("facade", "Grey", "Sigi Sagi"),
    _plasma("kite", "Kite", _SAUKONPAA),
    _plasma("moss", "OneStandsOut", _SAUKONPAA),
    _plasma("forest-path", "Path", _SAUKONPAA),
    _plasma("summer-night-lake", "summer_1am", _SAUKONPAA),
    Photo(
        "grace-hopper",
        SHARE / "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "U.S. Navy official photograph (matplotlib's sample data)",
        "public-domain",
        MATPLOTLIB,
    ),
)


def real_photos() -> list[Photo]:
    """The curated photographs present on this machine (those of a missing package skip)."""
    return [photo for photo in CATALOGUE if photo.path.is_file()]


def missing_packages() -> list[str]:
    """The packages whose photographs are not all installed: empty when the set is whole."""
    missing = {photo.package for photo in CATALOGUE if not photo.path.is_file()}
    return [package for package in PACKAGES if package in missing]


def load(photo: Photo, max_side: int = 1024) -> Image.Image:
    """The photo as RGB, upright (EXIF orientation applied), its longer side at most max_side."""
    if max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    if not photo.path.is_file():
        raise FileNotFoundError(
            f"{photo.name}: {photo.path} is missing; install the Debian package "
            f"{photo.package} (make system-tools)"
        )
    with Image.open(photo.path) as image:
        # A JPEG decodes straight to a power-of-two reduction no smaller than the target:
        # several times faster on these 2,500-5,300 px photographs than a whole decode.
        scale = min(1.0, max_side / max(image.size))
        image.draft("RGB", (round(image.width * scale), round(image.height * scale)))
        upright = ImageOps.exif_transpose(image).convert("RGB")
    upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return upright
