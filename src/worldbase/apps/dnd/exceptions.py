"""Domain errors of the dnd app (mapped to status codes by core/errors.py)."""

from __future__ import annotations

from worldbase.core.errors import NotFound, RateLimited, UpstreamError, UpstreamTimeout


class ImageNotFound(NotFound):
    def __init__(self, image_id: int):
        super().__init__("Image not found", detail={"id": image_id})


class QuotaExceeded(RateLimited):
    """The image provider's quota is used up (the seed's QuotaExceededError)."""


class GenerationTimeout(UpstreamTimeout):
    """The image provider did not answer in time (the seed's GenerationTimeoutError)."""


class GenerationFailed(UpstreamError):
    """The image provider failed or answered without an image."""
