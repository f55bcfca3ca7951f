"""The gallery page: a user's tiers and groups as thumbnails, to judge clusters by eye."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from photocluster.config import Settings
from photocluster.errors import InvalidEvent, NotAnImageKey
from photocluster.ingest.events import parse_key

log = logging.getLogger(__name__)
MAX_GROUPS_SHOWN = 200

_templates = Environment(
    loader=PackageLoader("photocluster.api", "templates"), autoescape=select_autoescape(["html"])
)


class Thumbnails:
    """Image URLs for a user's image ids: a configured URL template, or presigned S3 GETs of
    the uploaded objects (one listing of the user's prefix per page)."""

    def __init__(self, settings: Settings, s3: Any | None) -> None:
        self.template = settings.thumbnail_url_template
        self.bucket = settings.bucket
        self.prefix = settings.upload_prefix
        self.expiry = settings.presign_expiry_s
        self.s3 = s3

    def urls(self, user_id: str, image_ids: Iterable[str]) -> dict[str, str]:
        """A URL per image id, where one can be made."""
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
        try:
            return {
                image_id: self.s3.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.expiry
                )
                for image_id, key in self._keys(user_id, wanted).items()
            }
        except Exception:  # thumbnails are a convenience: the page still shows the ids
            log.exception("could not list thumbnails for %s", user_id)
            return {}

    def _keys(self, user_id: str, wanted: set[str]) -> dict[str, str]:
        """The uploaded object's key of each wanted image id (one listing of the user)."""
        assert self.bucket is not None and self.s3 is not None
        keys: dict[str, str] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{user_id}/"):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                try:
                    ref = parse_key(self.bucket, key, self.prefix)
                except (NotAnImageKey, InvalidEvent):
                    continue
                if ref.image_id in wanted:
                    keys[ref.image_id] = key
        return keys


def render(result: dict[str, Any], urls: dict[str, str]) -> str:
    """The page of a clusters answer whose tiers hold their first MAX_GROUPS_SHOWN groups."""
    tiers = [
        {
            "name": tier["name"],
            "threshold": tier["threshold"],
            "n_groups": tier["total_groups"],
            "n_grouped": tier["total_images"],
            "groups": [(group["image_ids"], group["score"]) for group in tier["groups"]],
            "truncated": tier["total_groups"] > len(tier["groups"]),
        }
        for tier in result["tiers"]
    ]
    return _templates.get_template("gallery.html").render(
        result=result, tiers=tiers, urls=urls, max_groups=MAX_GROUPS_SHOWN
    )
