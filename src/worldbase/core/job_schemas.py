"""Job schemas, shared by `/api/jobs` and by apps that expose their jobs' status."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from worldbase.core.models import JobStatus
from worldbase.core.schemas import Schema, UTCDateTime, examples

JOB_EXAMPLE: dict[str, Any] = {
    "id": "0b7f6a52-4a8e-4d0e-9d4c-2f1f3f0a9b11",
    "kind": "samsyn.import",
    "status": "running",
    "progress": 0.4,
    "message": "converting rows 4000/10000",
    "params": {"upload": "uploads/9f1c.gpkg"},
    "result": None,
    "error": None,
    "owner_id": "222aa5b1-79c6-4261-a725-72d01d966a0a",
    "attempts": 1,
    "max_attempts": 2,
    "cancel_requested": False,
    "created_at": "2026-11-23T05:43:19Z",
    "updated_at": "2026-11-23T05:43:24Z",
    "started_at": "2026-11-23T05:43:20Z",
    "finished_at": None,
}


class JobRead(Schema):
    model_config = examples(JOB_EXAMPLE)

    id: uuid.UUID
    kind: str
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    message: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    owner_id: uuid.UUID | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    # With their UTC offset: SQLite hands back naive datetimes, and `date-time` needs one.
    created_at: UTCDateTime
    updated_at: UTCDateTime
    started_at: UTCDateTime | None
    finished_at: UTCDateTime | None


class JobPage(Schema):
    model_config = examples({"items": [JOB_EXAMPLE], "total": 1, "limit": 50, "offset": 0})

    items: list[JobRead]
    total: int
    limit: int
    offset: int
