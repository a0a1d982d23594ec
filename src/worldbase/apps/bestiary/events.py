"""Realtime events of reconstruction jobs.

The core publishes each job's state changes on `jobs:{id}` (`{"type": "job", "status",
"progress" 0..1, "message"}`); the reconstruction handler adds, on
`bestiary:reconstruct:{id}`, one event per stage step and log line:
`{"type": "reconstruct.progress", "job_id", "status": "running", "progress" 0..100,
"stage", "log"}`. `WS /api/reconstruct/{jobId}/events` forwards both.
"""

from __future__ import annotations

import uuid
from typing import Any

FINISHED = frozenset({"succeeded", "completed", "failed", "cancelled"})


def reconstruct_channel(job_id: uuid.UUID | str) -> str:
    return f"bestiary:reconstruct:{job_id}"


def progress_event(
    job_id: uuid.UUID | str, *, progress: float, stage: str, line: str
) -> dict[str, Any]:
    return {
        "type": "reconstruct.progress",
        "job_id": str(job_id),
        "status": "running",
        "progress": round(progress * 100),
        "stage": stage,
        "log": line,
    }


def is_final(event: dict[str, Any]) -> bool:
    return event.get("type") == "job" and event.get("status") in FINISHED
