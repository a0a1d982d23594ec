"""Core routes: read, list and cancel jobs, and follow one over a WebSocket."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, WebSocket

from worldbase.core import users
from worldbase.core.auth import CurrentUser, authenticate_token
from worldbase.core.errors import DomainError, Forbidden, NotAuthenticated, NotFound
from worldbase.core.job_schemas import JobPage, JobRead
from worldbase.core.jobs import JobRuntime, job_channels, job_event
from worldbase.core.live_socket import AccessGuard, close_refused, serve_websocket
from worldbase.core.models import Job, JobStatus, User
from worldbase.core.realtime import user_channel
from worldbase.core.schemas import PageLimit, PageOffset
from worldbase.core.services import JobsDep, services_of

router = APIRouter()


def _can_see(user: User, job: Job) -> bool:
    return user.is_admin or job.owner_id == user.id


async def job_for_user(job_id: uuid.UUID, user: CurrentUser, jobs: JobsDep) -> Job:
    """The job, if the caller owns it or is an admin; others get 404 (existence is private)."""
    job = await jobs.get(job_id)
    if not _can_see(user, job):
        raise NotFound("Job not found")
    return job


JobForUser = Annotated[Job, Depends(job_for_user)]


@router.get("", response_model=JobPage, summary="List my jobs (admins: all=true for everyone's)")
async def list_jobs(
    user: CurrentUser,
    jobs: JobsDep,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
    every: Annotated[bool, Query(alias="all", description="Admins only: everyone's jobs")] = False,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> dict[str, Any]:
    if every and not user.is_admin:
        raise Forbidden("Only administrators can list every user's jobs")
    items, total = await jobs.list(
        owner_id=None if every else user.id, status=status, kind=kind, limit=limit, offset=offset
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{job_id}", response_model=JobRead, summary="A job's status, progress and result")
async def get_job(job: JobForUser) -> Job:
    return job


@router.post("/{job_id}/cancel", response_model=JobRead, summary="Cancel a queued or running job")
async def cancel_job(job: JobForUser, jobs: JobsDep) -> Job:
    return await jobs.cancel(job.id)


WS_NOT_FOUND = 4404  # application-range close codes mirror the HTTP statuses


@router.websocket("/{job_id}/events")
async def job_events(websocket: WebSocket, job_id: uuid.UUID, token: str | None = None) -> None:
    """Sends the job's current state, then each change, and closes once it has finished.

    Browsers cannot set headers on a WebSocket, so the bearer token comes as `?token=`.
    Close codes: 4401 unauthenticated, 4403 disabled account, 4404 no such job (or not
    yours, or the account disabled or deleted while connected), 1013 the client fell
    behind, 1000 the job finished. An event already in
    flight when the state was read may arrive after it: treat events as state updates.
    """
    await websocket.accept()
    services = services_of(websocket)
    jobs: JobRuntime = services.jobs
    try:
        if not token:
            raise NotAuthenticated("Not authenticated")
        async with services.db.sessionmaker() as session:
            user = await authenticate_token(session, token=token, settings=services.settings)
    except DomainError as exc:  # 4401 / 4403
        await close_refused(websocket, exc)
        return
    try:
        job = await jobs.get(job_id)
    except NotFound:
        job = None
    if job is None or not _can_see(user, job):
        await websocket.close(code=WS_NOT_FOUND, reason="Job not found")
        return
    subscription = services.hub.subscribe(*job_channels(job)[:1], user_channel(user.id))
    # Subscribe before reading the state, so no change falls between the two.
    await subscription.ready(within=5)
    current = await jobs.get(job_id)

    async def still_visible() -> bool:
        async with services.db.sessionmaker() as session:
            fresh = await users.get_active(session, user_id=user.id)
        if fresh is None:
            return False
        try:
            return _can_see(fresh, await jobs.get(job_id))
        except NotFound:
            return False

    guard = AccessGuard(check=still_visible, every=services.settings.worldbase_ws_recheck_seconds)
    await serve_websocket(
        websocket,
        subscription,
        initial=job_event(current),
        until=lambda event: JobStatus(event["status"]).finished,
        guard=guard,
    )
