"""Existence and permission checks that return the object.

Characters are public to read and admin-only to write (the seed: "authentication for admin
endpoints"); favorites belong to the signed-in user; reconstruction uploads, jobs and
results belong to whoever started them (others get 404, admins see everything). Exports
are of public characters: anyone may read an export's status and file, signing in is
needed to ask for one.

Writes and uploads are rate limited per client address (`BESTIARY_WRITE_RATE_LIMIT`,
`BESTIARY_UPLOAD_RATE_LIMIT`): over the limit, 429 with `Retry-After`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from worldbase.apps.bestiary import exports, reconstruction, service
from worldbase.apps.bestiary.models import Character, ExportJob, ReconstructionJob
from worldbase.apps.bestiary.settings import BestiarySettings
from worldbase.core.auth import AdminUser, CurrentUser
from worldbase.core.db import Session
from worldbase.core.models import Job, User
from worldbase.core.ratelimit import rate_limit
from worldbase.core.schemas import serial_id_path

CharacterId = Annotated[int, serial_id_path("Character id")]

# Route dependencies: `dependencies=[WriteLimit]` on writes, `[UploadLimit]` on uploads and
# on starting a reconstruction (the expensive ones).
write_rate_limit = rate_limit("bestiary-write", lambda s: s.app(BestiarySettings).write_rate_limit)
upload_rate_limit = rate_limit(
    "bestiary-upload", lambda s: s.app(BestiarySettings).upload_rate_limit
)
WriteLimit = Depends(write_rate_limit)
UploadLimit = Depends(upload_rate_limit)
ExportId = Annotated[int, serial_id_path("Export id")]


async def character_for_read(id: CharacterId, session: Session) -> Character:
    return await service.get_or_raise(session, character_id=id)


async def character_for_edit(id: CharacterId, session: Session, _: AdminUser) -> Character:
    return await service.get_or_raise(session, character_id=id)


CharacterForRead = Annotated[Character, Depends(character_for_read)]
CharacterForEdit = Annotated[Character, Depends(character_for_edit)]


async def export_for_read(export_id: ExportId, session: Session) -> ExportJob:
    return await exports.get_or_raise(session, export_id=export_id)


ExportForRead = Annotated[ExportJob, Depends(export_for_read)]


@dataclass
class OwnedJob:
    row: ReconstructionJob
    job: Job
    user: User


async def job_for_owner(job_id: uuid.UUID, session: Session, user: CurrentUser) -> OwnedJob:
    row, job = await reconstruction.get_or_raise(session, job_id=job_id, user=user)
    return OwnedJob(row, job, user)


JobForOwner = Annotated[OwnedJob, Depends(job_for_owner)]
