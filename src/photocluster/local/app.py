"""The app's side of the contract, as a phone does it: ask the API for an upload URL, PUT
the photo's bytes to S3, follow its status. The demo, ``make up``'s instructions, the
end-to-end test and the pipeline benchmark all go through here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from photocluster.errors import StackError
from photocluster.images import media_type_of


@dataclass
class AppClient:
    """One user's session with the API (a bearer token), over real HTTP."""

    api_url: str
    user: str
    token: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    throttled_retries: int = 5

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str = "") -> str:
        return f"{self.api_url}/v1/users/{self.user}{path}"

    def upload(self, filename: str, data: bytes, content_type: str | None = None) -> str:
        """Upload one photo the way the app does; returns its image id."""
        kind = content_type or media_type_of(filename) or "application/octet-stream"
        ask = {"filename": filename, "content_type": kind, "size": len(data)}
        answer = self.http.post(self.url("/uploads"), json=ask, headers=self.headers)
        for _ in range(self.throttled_retries):  # past the user's rate: wait as told
            if answer.status_code != 429:
                break
            time.sleep(float(answer.headers.get("Retry-After", "1")))
            answer = self.http.post(self.url("/uploads"), json=ask, headers=self.headers)
        if answer.status_code != 201:
            raise StackError(f"upload of {filename!r} refused: {answer.status_code} {answer.text}")
        ticket = answer.json()
        put = self.http.request(
            ticket["method"], ticket["url"], content=data, headers=ticket["headers"]
        )
        if put.status_code >= 300:
            raise StackError(f"S3 refused the upload of {filename!r}: {put.status_code}")
        return str(ticket["image_id"])

    def get(self, path: str, **params: Any) -> Any:
        answer = self.http.get(self.url(path), params=params, headers=self.headers)
        answer.raise_for_status()
        return answer.json()

    def not_similar(self, image_ids: list[str], undo: bool = False) -> Any:
        """Mark (or unmark) every pair among these photos as not similar."""
        answer = self.http.request(
            "DELETE" if undo else "PUT",
            self.url("/decisions/not-similar"),
            json={"image_ids": image_ids},
            headers=self.headers,
        )
        answer.raise_for_status()
        return answer.json()

    def delete(self, image_id: str) -> int:
        return self.http.delete(self.url(f"/images/{image_id}"), headers=self.headers).status_code

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Every image of the user, by id (all pages)."""
        found: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            page = self.get("/images", limit=1000, **({"cursor": cursor} if cursor else {}))
            found |= {image["image_id"]: image for image in page["images"]}
            if not (cursor := page["next_cursor"]):
                return found

    def wait_until_settled(
        self, image_ids: list[str], timeout_s: float, poll_s: float = 0.2
    ) -> dict[str, dict[str, Any]]:
        """Poll until none of ``image_ids`` is pending; their records."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.statuses()
            waiting = [
                i for i in image_ids if found.get(i, {}).get("status", "pending") == "pending"
            ]
            if not waiting:
                return {i: found[i] for i in image_ids}
            if time.monotonic() > deadline:
                raise StackError(f"{len(waiting)} photos still pending after {timeout_s:.0f} s")
            time.sleep(poll_s)
