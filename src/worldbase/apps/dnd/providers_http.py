"""Image providers that self-hosters run, spoken to over plain HTTP through the source policy.

- `OpenAIImagesProvider`: any OpenAI-compatible images API (`POST {base}/v1/images/generations`,
  `{"data": [{"b64_json": ...}]}`): OpenAI itself, LocalAI, and other servers with that API.
- `Automatic1111Provider`: a Stable Diffusion web UI (AUTOMATIC1111, Forge, SD.Next) started
  with `--api`: `POST {url}/sdapi/v1/txt2img` -> `{"images": [<base64 PNG>]}`.

Every request goes through `core.source_policy`'s guarded client: a provider on loopback or
a private network must be allow-listed (`WORLDBASE_SOURCE_ALLOWLIST`). Upstream 429 -> 429
(quota), timeouts -> 504, anything else (unreachable, refused, 4xx/5xx, no image) -> 502.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from typing import Any

import httpx
from PIL import Image, ImageOps

from worldbase.apps.dnd.exceptions import GenerationFailed, GenerationTimeout, QuotaExceeded
from worldbase.apps.dnd.providers import GenerationSpec
from worldbase.core import source_policy
from worldbase.core.errors import BadInput
from worldbase.core.images import open_image
from worldbase.core.source_policy import SourceNotAllowed, SourcePolicy

log = logging.getLogger("worldbase.dnd.providers")

MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a base64 1024x1024 PNG is ~2-4 MB
OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_IMAGE_MODEL = "gpt-image-1"
NEGATIVE_PROMPT = "text, letters, watermark, signature, blurry, lowres, deformed"


def prompt_of(spec: GenerationSpec) -> str:
    kind = {"scene": "a scene", "item": "an item", "character": "a character"}
    return (
        f"Fantasy role-playing game illustration of {kind[spec.subject_type]}: "
        f"{spec.subject_name}. {spec.prompt}"
        + (f" {spec.custom_prompt}" if spec.custom_prompt else "")
        + " No text or lettering."
    )


async def post_json(
    policy: SourcePolicy,
    url: str,
    *,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    timeout: float,  # noqa: ASYNC109 - httpx's timeout, per request
) -> Any:
    """POST JSON and return the decoded JSON answer, errors mapped to the seed's statuses."""
    try:
        async with (
            source_policy.async_client(policy, timeout=timeout) as client,
            client.stream("POST", url, json=body, headers=headers) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise GenerationFailed("Image provider answer is too large")
                chunks.append(chunk)
    except SourceNotAllowed as exc:
        raise GenerationFailed(
            "Image provider address refused by the source policy",
            detail={"reason": exc.message, "settings": ["WORLDBASE_SOURCE_ALLOWLIST"]},
        ) from None
    except httpx.TimeoutException:
        raise GenerationTimeout("Image generation timed out") from None
    except httpx.HTTPError as exc:
        log.warning("image provider request failed: %s", type(exc).__name__)
        raise GenerationFailed(f"Image provider unreachable: {type(exc).__name__}") from None
    data = b"".join(chunks)
    if response.status_code == 429:
        raise QuotaExceeded(
            "Image generation quota exceeded",
            headers={"Retry-After": response.headers.get("retry-after", "60")},
        )
    if response.status_code in (408, 504):
        raise GenerationTimeout("Image generation timed out")
    if response.status_code >= 400:
        raise GenerationFailed(
            "Image provider error",
            detail={"upstream_status": response.status_code, "message": _message(data)},
        )
    try:
        return json.loads(data)
    except ValueError:
        raise GenerationFailed("Image provider answered with something that is not JSON") from None


def _message(data: bytes) -> str:
    """The upstream's own error message (OpenAI: error.message; A1111: detail/error)."""
    try:
        payload = json.loads(data)
    except ValueError:
        return data[:200].decode("utf-8", "replace")
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            return str(error.get("message", ""))[:200]
        # A1111: {"error": <type>, "detail": "", "body": "", "errors": <message>}
        parts = [payload.get(k) for k in ("error", "detail", "errors")]
        return ": ".join(str(p) for p in parts if p)[:200]
    return ""


async def picture_of(b64: Any, size: tuple[int, int]) -> Image.Image:
    """Decode a base64 image (a data URL is fine) and fit it to the requested size."""
    if not isinstance(b64, str) or not b64:
        raise GenerationFailed("Image provider returned no image")
    text = b64.split(",", 1)[1] if b64.startswith("data:") else b64
    try:
        raw = base64.b64decode(text, validate=True)
        picture = await asyncio.to_thread(open_image, raw)
    except (binascii.Error, ValueError, BadInput):
        raise GenerationFailed("Image provider returned data that is not an image") from None
    if picture.size == size:
        return picture
    return await asyncio.to_thread(ImageOps.fit, picture, size, Image.Resampling.LANCZOS)


def images_url(base_url: str) -> str:
    """`OPENAI_BASE_URL` as the SDKs take it (`.../v1`) or without the version."""
    base = base_url.rstrip("/")
    return f"{base}/images/generations" if base.endswith("/v1") else f"{base}/v1/images/generations"


def openai_size(model: str, aspect_ratio: str) -> str:
    """The size the model accepts closest to the aspect ratio (the picture is then fitted)."""
    if aspect_ratio == "1:1":
        return "1024x1024"
    wide = aspect_ratio in ("16:9", "4:3")
    if model.startswith("gpt-image"):
        return "1536x1024" if wide else "1024x1536"
    if model.startswith("dall-e-3"):
        return "1792x1024" if wide else "1024x1792"
    return "1024x1024"  # dall-e-2 and unknown models: square is what every server takes


class OpenAIImagesProvider:
    """An OpenAI-compatible images API; `b64_json` answers (asked for where the model takes
    `response_format`; gpt-image models always answer so)."""

    name = "openai"

    def __init__(
        self,
        *,
        policy: SourcePolicy,
        api_key: str | None,
        base_url: str = OPENAI_BASE_URL,
        model: str = OPENAI_IMAGE_MODEL,
        timeout_seconds: float = 120.0,
    ):
        self.policy = policy
        self.api_key = api_key
        self.url = images_url(base_url)
        self.model = model
        self.timeout_seconds = timeout_seconds

    async def generate(self, spec: GenerationSpec) -> Image.Image:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt_of(spec),
            "n": 1,
            "size": openai_size(self.model, spec.aspect_ratio),
        }
        if not self.model.startswith("gpt-image"):
            body["response_format"] = "b64_json"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        answer = await post_json(
            self.policy, self.url, body=body, headers=headers, timeout=self.timeout_seconds
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        return await picture_of(first.get("b64_json"), spec.size)


class Automatic1111Provider:
    """A Stable Diffusion web UI's txt2img API; the seed of the request is passed on, so the
    same request gives the same picture."""

    name = "automatic1111"

    def __init__(
        self, *, policy: SourcePolicy, url: str, steps: int = 20, timeout_seconds: float = 120.0
    ):
        self.policy = policy
        self.url = url.rstrip("/") + "/sdapi/v1/txt2img"
        self.steps = steps
        self.timeout_seconds = timeout_seconds

    async def generate(self, spec: GenerationSpec) -> Image.Image:
        width, height = spec.size
        body = {
            "prompt": prompt_of(spec),
            "negative_prompt": NEGATIVE_PROMPT,
            "width": width,
            "height": height,
            "steps": self.steps,
            "seed": spec.effective_seed,
            "batch_size": 1,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }
        answer = await post_json(self.policy, self.url, body=body, timeout=self.timeout_seconds)
        images = answer.get("images") if isinstance(answer, dict) else None
        first = images[0] if isinstance(images, list) and images else None
        return await picture_of(first, spec.size)
