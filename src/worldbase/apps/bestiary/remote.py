"""Portraits and models named by URL in a character's `image_path` / `model_path` (seed 004's
model has them as paths): fetched under the source policy, checked, and stored like uploads.

The fetch uses the policy's guarded client (`core.source_policy`): the URL and every redirect
hop are checked, and the address is checked again when the connection is made. A refused
destination is 403, an unreachable or failing one 502, a slow one 504, an answer larger than
`WORLDBASE_MAX_BODY_BYTES` 422 (the same cap as an upload). What arrives is sniffed as an
upload would be: Pillow (bounded, `core.images`) for a portrait, the mesh validation for a
model; anything else is 422 and nothing is stored.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from worldbase.apps.bestiary import meshes
from worldbase.apps.bestiary.settings import BestiarySettings
from worldbase.core import source_policy
from worldbase.core.errors import BadInput, UpstreamError, UpstreamTimeout
from worldbase.core.images import WebpImage, decode_to_webp
from worldbase.settings import Settings

URL_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Media:
    """What a create or update asks for: a fetched portrait or model, or `clear_*` (null)."""

    portrait: WebpImage | None = None
    glb: bytes | None = None
    clear_image: bool = False
    clear_model: bool = False

    @property
    def empty(self) -> bool:
        return not (self.portrait or self.glb or self.clear_image or self.clear_model)


def is_url(value: str) -> bool:
    return value.lower().startswith(URL_SCHEMES)


def _detail(field: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"loc": ["body", field], "source": url[:200], **extra}


async def fetch(url: str, *, field: str, settings: Settings) -> bytes:
    """The body at `url` (2xx only), at most `WORLDBASE_MAX_BODY_BYTES`, under the policy."""
    policy = source_policy.SourcePolicy.from_settings(settings)
    policy.check_url(url, resolve=False)  # scheme, host, literal addresses; names at connect
    limit = settings.worldbase_max_body_bytes
    fetch_timeout = settings.app(BestiarySettings).fetch_timeout
    timeout = httpx.Timeout(fetch_timeout)
    try:
        async with (
            source_policy.async_client(policy, timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise UpstreamError(
                    f"{field}: the source answered HTTP {response.status_code}",
                    detail=_detail(field, url, upstream_status=response.status_code),
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(field, url, limit)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise _too_large(field, url, limit)
                chunks.append(chunk)
    except httpx.TimeoutException:
        raise UpstreamTimeout(
            f"{field}: the source did not answer within {fetch_timeout:g} s",
            detail=_detail(field, url, reason="timeout"),
        ) from None
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise UpstreamError(
            f"{field}: the source could not be reached: {reason}",
            detail=_detail(field, url, reason=reason),
        ) from None
    if not chunks:
        raise BadInput(f"{field}: the source answered an empty body", detail=_detail(field, url))
    return b"".join(chunks)


def _too_large(field: str, url: str, limit: int) -> BadInput:
    return BadInput(
        f"{field}: the file is larger than {limit} bytes", detail=_detail(field, url, limit=limit)
    )


def _reworded(exc: BadInput, field: str, url: str) -> BadInput:
    return BadInput(f"{field}: {exc.message}", detail=_detail(field, url))


async def fetch_portrait(url: str, *, settings: Settings) -> WebpImage:
    data = await fetch(url, field="image_path", settings=settings)
    try:
        return await asyncio.to_thread(
            decode_to_webp, data, quality=settings.webp_quality, upright=True
        )
    except BadInput as exc:
        raise _reworded(exc, "image_path", url) from None


async def fetch_model(url: str, *, settings: Settings) -> bytes:
    data = await fetch(url, field="model_path", settings=settings)
    try:
        glb, _ = await asyncio.to_thread(meshes.normalize, data)
    except BadInput as exc:
        raise _reworded(exc, "model_path", url) from None
    return glb


async def media_for(
    values: dict[str, Any], *, settings: Settings, current: dict[str, str | None] | None = None
) -> Media:
    """Pop `image_path` / `model_path` from `values` and fetch what they name.

    A URL is fetched; `null` clears (on update); the path already stored (a client sending a
    character back as it read it) changes nothing; any other text is 422. Both are fetched
    before anything is written, so a refused or broken source leaves the character as it was.
    """
    current = current or {}
    fetched: dict[str, str] = {}
    clear: dict[str, bool] = {}
    for field in ("image_path", "model_path"):
        if field not in values:
            continue
        value = values.pop(field)
        if value is not None and value == current.get(field):
            continue
        if value is None:
            clear[field] = bool(current.get(field))
            continue
        if not is_url(value):
            target = "image" if field == "image_path" else "model"
            raise BadInput(
                f"{field} must be an http(s) URL of the file to fetch (or upload the file to "
                f"/api/characters/{{id}}/{target})",
                detail=_detail(field, value),
            )
        fetched[field] = value
    portrait = None
    if "image_path" in fetched:
        portrait = await fetch_portrait(fetched["image_path"], settings=settings)
    glb = None
    if "model_path" in fetched:
        glb = await fetch_model(fetched["model_path"], settings=settings)
    return Media(
        portrait=portrait,
        glb=glb,
        clear_image=clear.get("image_path", False),
        clear_model=clear.get("model_path", False),
    )
