"""Checks every request's text input before any route sees it: no NUL characters.

PostgreSQL text and JSONB cannot hold U+0000, so a NUL in a query parameter, a path segment
or a JSON string used to surface as a database error (a 500, e.g. `GET /objects?tag=a%00b`).
Nothing legitimate needs one, so it is refused here, once, for every route: 422.
"""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection, Request

from worldbase.core.errors import BadInput

# `\u0000` in JSON text, unless its backslash is itself escaped (`"\\u0000"` is six letters).
_JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")


def _json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def refuse_nul_characters(connection: HTTPConnection) -> None:
    """App-wide dependency: 422 for a NUL in the query, the path parameters or a JSON body."""
    for key, value in connection.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise BadInput("NUL characters are not allowed", detail={"query": key[:100]})
    for key, value in connection.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise BadInput("NUL characters are not allowed", detail={"path": key})
    # FastAPI has read a JSON body already (cached); form and file bodies are not JSON text.
    if not isinstance(connection, Request) or not _json(connection.headers.get("content-type", "")):
        return
    body = await connection.body()
    # A plain substring search first: the regex only runs on the rare body that has one.
    if b"\\u0000" in body and _JSON_NUL.search(body):
        raise BadInput("NUL characters are not allowed", detail={"body": "\\u0000"})
