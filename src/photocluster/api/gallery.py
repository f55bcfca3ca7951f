"""The gallery page: a user's tiers and groups as thumbnails, to judge clusters by eye."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from photocluster.buckets import key_of_image
from photocluster.config import Settings

log = logging.getLogger(__name__)
MAX_GROUPS_SHOWN = 200
MAX_LISTED = 200  # photos in no group, and failed uploads, listed on the page

_templates = Environment(
    loader=PackageLoader("photocluster.api", "templates"), autoescape=select_autoescape(["html"])
)


class Thumbnails:
    """Image URLs for a user's image ids: a configured URL template, or presigned S3 GETs of
    the uploaded objects, at the keys their records name (no listing: a page costs no S3
    call, whatever the size of the user's library)."""

    def __init__(self, settings: Settings, s3: Any | None) -> None:
        self.template = settings.thumbnail_url_template
        self.bucket = settings.bucket
        self.prefix = settings.upload_prefix
        self.expiry = settings.presign_expiry_s
        self.s3 = s3

    def urls(
        self, user_id: str, image_ids: Iterable[str], recorded: Mapping[str, str | None]
    ) -> dict[str, str]:
        """A URL per image id, where one can be made; ``recorded`` holds the S3 key each
        image's record names (key_of_image decides which key an image has)."""
        wanted = set(image_ids)
        if self.template:
            return {
                i: self.template.format(
                    user_id=urllib.parse.quote(user_id), image_id=urllib.parse.quote(i)
                )
                for i in wanted
            }
        if not self.bucket or self.s3 is None:
            return {}
        keys = {i: key_of_image(self.prefix, user_id, i, recorded.get(i)) for i in wanted}
        try:
            return {
                image_id: self.s3.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expiry
                )
                for image_id, key in keys.items()
                if key is not None
            }
        except Exception:  # thumbnails are a convenience (no credentials to sign with, say)
            log.exception("could not sign thumbnails for %s", user_id)
            return {}


@dataclass
class Node:
    """A group as the page nests it: its stricter tiers' groups inside it, then the photos
    of its own that none of them holds."""

    tier: str
    score: float
    size: int
    children: list[Node] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)


def tree(tiers: list[dict[str, Any]]) -> list[Node]:
    """The loosest tier's groups, each holding its groups of the next tier, and so on."""
    made: list[Node] = []
    roots: list[Node] = []
    looser: dict[str, Node] = {}  # the previous tier's groups by id (a group of the same
    for tier in tiers:  # members in two tiers has one id), loosest first
        current: dict[str, Node] = {}
        for group in tier["groups"]:
            node = Node(tier["name"], group["score"], len(group["image_ids"]))
            node.loose = list(group["image_ids"])
            parent = looser.get(group["parent_id"] or "")
            (parent.children if parent is not None else roots).append(node)
            current[group["id"]] = node
            made.append(node)
        looser = current
    for node in made:
        held = {i for child in node.children for i in _members(child)}
        node.loose = [i for i in node.loose if i not in held]
    return roots


def _members(node: Node) -> list[str]:
    return [*node.loose, *(i for child in node.children for i in _members(child))]


def render(
    result: dict[str, Any],
    urls: dict[str, str],
    unrelated: list[str] | None = None,
    failed: list[tuple[str, str]] | None = None,
) -> str:
    """The page of a clusters answer whose tiers hold their first MAX_GROUPS_SHOWN groups:
    the loosest tier's groups with the stricter tiers' groups nested inside, each with its
    weakest pair; the photos in no group (None: more groups than the page shows, so not
    known from it) and the uploads that failed, with their code."""
    tiers = [
        {
            "name": tier["name"],
            "threshold": tier["threshold"],
            "n_groups": tier["total_groups"],
            "n_grouped": tier["total_images"],
            "truncated": tier["total_groups"] > len(tier["groups"]),
        }
        for tier in result["tiers"]
    ]
    return _templates.get_template("gallery.html").render(
        result=result,
        tiers=tiers,
        groups=tree(result["tiers"]),
        urls=urls,
        unrelated=unrelated,
        failed=failed or [],
        max_groups=MAX_GROUPS_SHOWN,
    )
