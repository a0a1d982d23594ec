"""Domain exceptions of the bestiary app beyond core's (`core.errors` maps them by status)."""

from __future__ import annotations

from worldbase.core.errors import BadInput


class ReconstructionFailed(BadInput):
    """The photos do not make a model; the message says why, for the user (the job fails)."""
