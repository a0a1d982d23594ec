"""Job schemas, shared by `/api/jobs` and by apps that expose their jobs' status."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from worldbase.core.models import JobStatus
from worldbase.core.schemas import Schema


class JobRead(Schema):
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
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobPage(Schema):
    items: list[JobRead]
    total: int
    limit: int
    offset: int
