"""Image providers behind one protocol: the offline procedural painter (default), Gemini,
and (providers_http.py) an OpenAI-compatible images API and a Stable Diffusion web UI.

`create_provider(settings)` is the one place that chooses, from `IMAGE_PROVIDER`
(default `auto`: Gemini when `GEMINI_API_KEY` is set, AUTOMATIC1111 when `SD_WEBUI_URL`
is, the procedural painter otherwise). Providers return a decoded Pillow image; the
service encodes it to WebP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image

from worldbase.apps.dnd import imaging, procedural
from worldbase.apps.dnd.exceptions import GenerationFailed, GenerationTimeout, QuotaExceeded
from worldbase.apps.dnd.settings import DndSettings
from worldbase.core.errors import BadInput
from worldbase.core.images import open_image
from worldbase.settings import Settings

log = logging.getLogger("worldbase.dnd.providers")

GEMINI_MODEL = "gemini-2.5-flash-image"
GEMINI_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class GenerationSpec:
    subject_type: str
    subject_name: str
    prompt: str
    custom_prompt: str | None
    aspect_ratio: str
    seed: int | None = None

    @property
    def size(self) -> tuple[int, int]:
        return imaging.SIZES[self.aspect_ratio]

    @property
    def text(self) -> str:
        parts = [self.subject_name, self.prompt, self.custom_prompt or ""]
        return ". ".join(p for p in parts if p)

    @property
    def effective_seed(self) -> int:
        if self.seed is not None:
            return self.seed
        key = f"{self.subject_type}|{self.aspect_ratio}|{self.text}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


class ImageProvider(Protocol):
    name: str

    async def generate(self, spec: GenerationSpec) -> Image.Image: ...


class ProceduralProvider:
    """Paints the prompt's scene offline in a fraction of a second (see procedural.py)."""

    name = "procedural"

    async def generate(self, spec: GenerationSpec) -> Image.Image:
        width, height = spec.size
        return await asyncio.to_thread(
            procedural.render,
            text=spec.text,
            subject_type=spec.subject_type,
            width=width,
            height=height,
            seed=spec.effective_seed,
        )


class GeminiProvider:
    """Gemini's image model through Google's `google-genai` SDK (generateContent).

    Quota errors (HTTP 429 / RESOURCE_EXHAUSTED) become 429, timeouts 504, anything
    else from upstream 502. The SDK's own retries are off: the caller decides.
    """

    name = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = GEMINI_MODEL,
        timeout_seconds: float = GEMINI_TIMEOUT_SECONDS,
    ):
        from google import genai
        from google.genai import types

        self.model = model
        self.timeout_seconds = timeout_seconds
        options = types.HttpOptions(
            base_url=base_url,
            timeout=int(timeout_seconds * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    def _prompt(self, spec: GenerationSpec) -> str:
        kind = {"scene": "a scene", "item": "an item", "character": "a character"}
        return (
            f"Fantasy role-playing game illustration of {kind[spec.subject_type]}: "
            f"{spec.subject_name}. {spec.prompt}"
            + (f" {spec.custom_prompt}" if spec.custom_prompt else "")
            + f" Aspect ratio {spec.aspect_ratio}. No text or lettering."
        )

    async def generate(self, spec: GenerationSpec) -> Image.Image:
        from google.genai import errors, types

        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=spec.aspect_ratio),
        )
        try:
            response = await asyncio.wait_for(
                self._client.aio.models.generate_content(
                    model=self.model, contents=self._prompt(spec), config=config
                ),
                self.timeout_seconds + 1,
            )
        except errors.APIError as exc:
            raise _api_error(exc) from None
        except TimeoutError:
            raise GenerationTimeout("Image generation timed out") from None
        except Exception as exc:
            if "timeout" in type(exc).__name__.lower():
                raise GenerationTimeout("Image generation timed out") from None
            log.warning("gemini request failed: %s", type(exc).__name__)
            raise GenerationFailed(f"Image provider unreachable: {type(exc).__name__}") from None
        data = _inline_image(response)
        try:
            return await asyncio.to_thread(open_image, data)
        except BadInput:
            raise GenerationFailed("Image provider returned data that is not an image") from None


def _api_error(exc: Any) -> Exception:
    code = getattr(exc, "code", None)
    status = str(getattr(exc, "status", "") or "")
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        return QuotaExceeded("Image generation quota exceeded", headers={"Retry-After": "60"})
    if code in (408, 504) or status == "DEADLINE_EXCEEDED":
        return GenerationTimeout("Image generation timed out")
    message = str(getattr(exc, "message", "") or "")[:200]
    return GenerationFailed(
        "Image provider error", detail={"upstream_status": code, "message": message}
    )


def _inline_image(response: Any) -> bytes:
    """The first inline image of the first candidate (text parts are ignored)."""
    for candidate in getattr(response, "candidates", None) or []:
        content = getattr(candidate, "content", None)
        for part in getattr(content, "parts", None) or []:
            inline = getattr(part, "inline_data", None)
            if inline is not None and inline.data and (inline.mime_type or "").startswith("image/"):
                data = inline.data
                return data if isinstance(data, bytes) else base64.b64decode(data)
    reason = None
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None:
        reason = str(getattr(feedback, "block_reason", None) or "") or None
    raise GenerationFailed("Image provider returned no image", detail={"block_reason": reason})


def provider_name(settings: Settings) -> str:
    """IMAGE_PROVIDER, with `auto` resolved: Gemini with a key, else a configured Stable
    Diffusion web UI, else the offline painter."""
    own = settings.app(DndSettings)
    if own.image_provider != "auto":
        return own.image_provider
    if own.gemini_api_key:
        return "gemini"
    return "automatic1111" if own.sd_webui_url else "procedural"


def create_provider(settings: Settings) -> ImageProvider:
    """The one place that chooses the image provider (from IMAGE_PROVIDER, see provider_name)."""
    from worldbase.apps.dnd import providers_http  # it builds on this module's GenerationSpec
    from worldbase.core.source_policy import SourcePolicy

    name = provider_name(settings)
    own = settings.app(DndSettings)
    timeout = own.image_timeout_seconds
    if name == "gemini" and own.gemini_api_key:
        return GeminiProvider(api_key=own.gemini_api_key, base_url=own.gemini_base_url)
    if name == "openai":
        return providers_http.OpenAIImagesProvider(
            policy=SourcePolicy.from_settings(settings),
            api_key=own.openai_api_key,
            base_url=own.openai_base_url,
            model=own.openai_image_model,
            timeout_seconds=timeout,
        )
    if name == "automatic1111" and own.sd_webui_url:
        return providers_http.Automatic1111Provider(
            policy=SourcePolicy.from_settings(settings),
            url=own.sd_webui_url,
            steps=own.sd_webui_steps,
            timeout_seconds=timeout,
        )
    return ProceduralProvider()
