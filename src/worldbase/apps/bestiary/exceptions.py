"""Domain exceptions of the bestiary app beyond core's (`core.errors` maps them by status)."""

from __future__ import annotations

from worldbase.core.errors import BadInput, Conflict


class ReconstructionFailed(BadInput):
    """The photos do not make a model; the message says why, for the user (the job fails)."""


class NoModel(Conflict):
    """The character has no 3D model (export, download)."""

    def __init__(self, message: str = "This character has no 3D model; upload one first"):
        super().__init__(message)
