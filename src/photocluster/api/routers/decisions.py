"""/v1/users/{user_id}/decisions: what the user said about pairs of photos ("not similar")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from photocluster.api.contract import JSON_BODY, responses
from photocluster.api.deps import CachedGroups, LibraryDep, Owner
from photocluster.api.schemas import (
    DecisionChange,
    DecisionsResponse,
    NotSimilarPair,
    NotSimilarRequest,
)

router = APIRouter(prefix="/v1/users/{user_id}/decisions", tags=["decisions"])


@router.put(
    "/not-similar",
    operation_id="markNotSimilar",
    response_model=DecisionChange,
    responses=responses(
        "markNotSimilar", *JSON_BODY, "unknown_image", "invalid_decision", "too_many_decisions"
    ),
)
def mark_not_similar(
    user_id: Owner, decision: NotSimilarRequest, library: LibraryDep
) -> DecisionChange:
    """Mark every pair among these photos (2-100) as not similar: from now on no group
    holds two of them, pairs leaves them out and similar flags them. Idempotent; 404 if
    any photo is unknown (details name it)."""
    changed, total = library.mark_not_similar(user_id, decision.image_ids)
    return DecisionChange(changed=changed, total=total)


@router.delete(
    "/not-similar",
    operation_id="unmarkNotSimilar",
    response_model=DecisionChange,
    responses=responses("unmarkNotSimilar", *JSON_BODY, "invalid_decision"),
)
def unmark_not_similar(
    user_id: Owner, decision: NotSimilarRequest, library: LibraryDep
) -> DecisionChange:
    """Undo a not-similar decision: every pair among these photos is unmarked. Idempotent."""
    changed, total = library.unmark_not_similar(user_id, decision.image_ids)
    return DecisionChange(changed=changed, total=total)


@router.get(
    "",
    operation_id="listDecisions",
    response_model=DecisionsResponse,
    responses=responses("listDecisions", "invalid_cursor", cached=True),
    dependencies=[CachedGroups],
)
def list_decisions(
    user_id: Owner,
    library: LibraryDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> DecisionsResponse:
    """The pairs the user marked not similar, newest first; a page at a time."""
    page = library.not_similar(user_id, limit, cursor)
    return DecisionsResponse(
        not_similar=[
            NotSimilarPair(a=a, b=b, created_at=datetime.fromtimestamp(t, UTC))
            for a, b, t in page.not_similar
        ],
        total=page.total,
        next_cursor=page.next_cursor,
    )
