"""Paging in headers, for lists answered as plain JSON arrays (seed clients read the array).

The total goes in `X-Total-Count`, the neighbouring pages in an RFC 8288 `Link` header
(`first`, `prev`, `next`, `last`), each the request's own URL with `limit`/`offset` replaced
(every other query parameter, repeated ones included, is kept).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

# For `responses={200: {"headers": PAGE_HEADERS}}` of such a route.
PAGE_HEADERS: dict[str, Any] = {
    "X-Total-Count": {
        "description": "How many items match, over all pages",
        "schema": {"type": "integer"},
    },
    "Link": {
        "description": "RFC 8288 links to the `first`, `prev`, `next` and `last` pages, e.g. "
        '`<https://host/objects?limit=100&offset=100>; rel="next"`',
        "schema": {"type": "string"},
    },
}


def page_links(
    request: Request, *, total: int, limit: int, offset: int, max_offset: int | None = None
) -> str:
    """The `Link` header value (`prev` only past the first page, `next` only before the
    last; no page past `max_offset`, the largest offset the route accepts)."""

    def link(at: int, rel: str) -> str:
        return f'<{request.url.include_query_params(limit=limit, offset=at)}>; rel="{rel}"'

    last = max(0, (total - 1) // limit * limit)
    if max_offset is not None:
        last = min(last, max_offset)
    links = [link(0, "first")]
    if offset > 0:
        links.append(link(min(max(0, offset - limit), last), "prev"))
    if offset + limit < total and (max_offset is None or offset + limit <= max_offset):
        links.append(link(offset + limit, "next"))
    links.append(link(last, "last"))
    return ", ".join(links)


def set_page_headers(
    request: Request,
    response: Response,
    *,
    total: int,
    limit: int,
    offset: int,
    max_offset: int | None = None,
) -> None:
    response.headers["X-Total-Count"] = str(total)
    response.headers["Link"] = page_links(
        request, total=total, limit=limit, offset=offset, max_offset=max_offset
    )
