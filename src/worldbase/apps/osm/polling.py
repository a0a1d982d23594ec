"""Polling sources: OSM replication diffs and Overpass queries, as `osm.poll_source` jobs.

A source's `connection_info` says where and how often (`poll_config` checks it):
- replication: `url` (the directory holding `state.txt`), optional `start_sequence` (the
  last sequence already applied; without it the first poll only records the server's
  current sequence: replication follows changes from then on), `max_diffs` per poll.
- overpass: `url` (the interpreter), `query` (Overpass QL with `[out:json]`), `method`.
- both: `interval_seconds`, `timeout_seconds`.

A replication poll reads `state.txt`, then downloads the `.osc.gz` diffs after the stored
sequence one at a time, imports each through the file path (so deletes mark objects
deleted) and stores its sequence number once it is in: a poll that stops half-way resumes
at the first diff not stored, and ingestion being idempotent by version, re-reading a diff
is harmless. Upstream trouble (timeouts, HTTP errors, a malformed state file, diff or
response) fails the job with the reason and writes a validation-log entry; the source is
polled again at its next interval, never in a tight loop.

Every request goes through the source policy (`core.source_policy`): the URL is checked
when a source is saved and again at each poll (an admin's source at 169.254.169.254 is
refused both times), and each request, redirect hops included, connects only to a checked
address (pyosmium's `requests` session is served by the policy's client).

Scheduling: once a minute each job consumer runs `schedule_due`, which claims each due
source with a guarded UPDATE of `last_polled_at` (several consumers never enqueue the same
poll twice) and skips sources whose previous poll is still queued or running.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import requests
from osmium.replication.server import ReplicationServer
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from urllib3.util import Retry

from worldbase.apps.osm.exceptions import SourceInactive, SourceNotFound
from worldbase.apps.osm.files import BATCH, Progress, Publish, import_file
from worldbase.apps.osm.ingest import IngestReport, ingest
from worldbase.apps.osm.models import DataSource, ValidationLogEntry
from worldbase.apps.osm.parsing import parse_payload, truncate_payload
from worldbase.core import source_policy
from worldbase.core.db import Database, utcnow
from worldbase.core.errors import BadInput, Conflict, Forbidden, UpstreamError
from worldbase.core.models import Job, JobStatus
from worldbase.core.source_policy import RefusedByPolicy, SourcePolicy

POLL_KIND = "osm.poll_source"
POLLING_TYPES = ("replication", "overpass")
DEFAULT_INTERVAL = {"replication": 60, "overpass": 600}
# The schedule is checked once a minute: a source is due a little early rather than a
# whole minute late.
SLACK = timedelta(seconds=5)
# A queued or running poll younger than this blocks the next one (an older one is stuck).
PENDING_FOR = timedelta(hours=1)
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
USER_AGENT = "worldbase-osm/1 (+https://github.com/worldbase)"

Enqueue = Callable[..., Awaitable[Job]]


@dataclass(frozen=True)
class PollConfig:
    url: str
    interval_seconds: int
    timeout_seconds: float = 60.0
    query: str | None = None
    method: str = "POST"
    max_diffs: int = 60
    start_sequence: int | None = None


def _number(info: dict[str, Any], name: str, low: int, high: int, default: Any) -> Any:
    value = info.get(name, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadInput(
            f"connection_info.{name} must be a number from {low} to {high}",
            detail={"field": f"connection_info.{name}"},
        )
    return value


def poll_config(
    source_type: str, info: dict[str, Any], *, policy: SourcePolicy | None = None
) -> PollConfig:
    """The checked settings of a polling source (BadInput naming the wrong field); with
    `policy`, its URL must pass the source policy too (`SourceNotAllowed`, 403)."""
    url = info.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise BadInput(
            f"A {source_type} source needs connection_info.url (http or https)",
            detail={"field": "connection_info.url"},
        )
    if policy is not None:
        policy.check_url(url)
    interval = int(_number(info, "interval_seconds", 1, 7 * 86400, DEFAULT_INTERVAL[source_type]))
    timeout = float(_number(info, "timeout_seconds", 1, 600, 60))
    if source_type == "replication":
        start = _number(info, "start_sequence", 0, 2**62, None)
        return PollConfig(
            url=url.rstrip("/") + "/",
            interval_seconds=interval,
            timeout_seconds=timeout,
            max_diffs=int(_number(info, "max_diffs", 1, 10_000, 60)),
            start_sequence=None if start is None else int(start),
        )
    query = info.get("query")
    if not isinstance(query, str) or not query.strip() or len(query) > 100_000:
        raise BadInput(
            "An overpass source needs connection_info.query (Overpass QL, [out:json])",
            detail={"field": "connection_info.query"},
        )
    method = str(info.get("method", "POST")).upper()
    if method not in ("GET", "POST"):
        raise BadInput(
            "connection_info.method must be GET or POST",
            detail={"field": "connection_info.method"},
        )
    return PollConfig(
        url=url, interval_seconds=interval, timeout_seconds=timeout, query=query, method=method
    )


# --- scheduling ----------------------------------------------------------------------------------


async def pending_polls(session: AsyncSession, *, now: datetime) -> dict[str, str]:
    """Source id -> id of its poll job that is still queued or running."""
    rows = await session.execute(
        select(Job.id, Job.params).where(
            Job.kind == POLL_KIND,
            Job.status.in_((JobStatus.queued, JobStatus.running)),
            Job.created_at >= now - PENDING_FOR,
        )
    )
    return {str((params or {}).get("source_id")): str(job_id) for job_id, params in rows}


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored one is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _cutoff(source: DataSource, now: datetime) -> datetime | None:
    """Polled (or created) before this, the source is due; None when it is misconfigured."""
    try:
        config = poll_config(source.type, source.connection_info or {})
    except BadInput:
        return None
    return now - timedelta(seconds=config.interval_seconds) + SLACK


async def schedule_due(db: Database, *, enqueue: Enqueue, now: datetime | None = None) -> list[str]:
    """Enqueue a poll for each active polling source whose interval has passed since its
    last poll (or its creation). Returns the ids of the sources enqueued."""
    now = now or utcnow()
    enqueued: list[str] = []
    async with db.sessionmaker() as session:
        sources = list(
            await session.scalars(
                select(DataSource).where(
                    DataSource.is_active.is_(True), DataSource.type.in_(POLLING_TYPES)
                )
            )
        )
        pending = await pending_polls(session, now=now)
        for source in sources:
            cutoff = _cutoff(source, now)
            if cutoff is None or source.id in pending:
                continue
            if _aware(source.last_polled_at or source.created_at) > cutoff:
                continue
            claimed = await session.execute(
                update(DataSource)
                .where(DataSource.id == source.id, DataSource.is_active.is_(True))
                .where(
                    or_(
                        DataSource.last_polled_at.is_(None),
                        DataSource.last_polled_at <= cutoff,
                    )
                )
                .values(last_polled_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            if claimed.rowcount:  # type: ignore[attr-defined]
                await enqueue(
                    kind=POLL_KIND,
                    params={"source_id": source.id, "scheduled": True},
                    max_attempts=1,
                )
                enqueued.append(source.id)
    return enqueued


async def request_poll(
    session: AsyncSession, *, source: DataSource, enqueue: Enqueue, owner_id: Any
) -> Job:
    """An administrator's "poll now"."""
    if source.type not in POLLING_TYPES:
        raise BadInput(
            f"Only replication and overpass sources are polled (this one is {source.type})"
        )
    if not source.is_active:
        raise SourceInactive("Data source is inactive")
    poll_config(source.type, source.connection_info or {})
    now = utcnow()
    job_id = (await pending_polls(session, now=now)).get(source.id)
    if job_id is not None:
        raise Conflict("A poll of this source is already queued or running", detail={"job": job_id})
    source.last_polled_at = now
    await session.commit()
    return await enqueue(
        kind=POLL_KIND, params={"source_id": source.id}, owner_id=owner_id, max_attempts=1
    )


# --- polling -------------------------------------------------------------------------------------


async def _log_failure(db: Database, source: DataSource, reason: str, payload: Any) -> None:
    async with db.sessionmaker() as session:
        session.add(
            ValidationLogEntry(
                source_id=source.id,
                channel=source.type,
                reason=reason[:2000],
                payload=truncate_payload(payload),
                created_at=utcnow(),
            )
        )
        await session.commit()


async def poll(
    db: Database,
    *,
    source_id: str,
    progress: Progress,
    publish: Publish | None = None,
    policy: SourcePolicy | None = None,
) -> dict[str, Any]:
    """One poll of one source (the body of the `osm.poll_source` job), under `policy`
    (the default policy when None: public addresses only)."""
    policy = policy or SourcePolicy()
    async with db.sessionmaker() as session:
        source = await session.get(DataSource, source_id)
    if source is None:
        raise SourceNotFound("Data source not found (deleted?)")
    if not source.is_active:
        return {"skipped": "the data source is inactive"}
    if source.type not in POLLING_TYPES:
        raise BadInput(f"A {source.type} source is not polled")
    try:
        config = poll_config(source.type, source.connection_info or {}, policy=policy)
        if source.type == "replication":
            return await _poll_replication(db, source, config, policy, progress, publish)
        return await _poll_overpass(db, source, config, policy, progress, publish)
    except (UpstreamError, BadInput, Forbidden) as exc:
        await _log_failure(db, source, exc.message, {"url": source.connection_info.get("url")})
        raise


# --- replication -------------------------------------------------------------------------------


def _replication_server(config: PollConfig, policy: SourcePolicy) -> ReplicationServer:
    server = ReplicationServer(config.url, diff_type="osc.gz")
    server.set_request_parameter("timeout", config.timeout_seconds)
    # pyosmium retries 3 times with back-off by default; the next poll is the retry here.
    server.retry = Retry(total=1, backoff_factor=0.2, allowed_methods={"GET"})
    # Every request (and redirect hop) through the policy's client, checked at connect.
    server.session = source_policy.requests_session(policy)
    return server


async def _state_error(config: PollConfig, policy: SourcePolicy) -> str:
    """Why pyosmium could not read state.txt (it only says None): one plain GET tells
    (a refusal by the policy is raised as such)."""
    url = config.url + "state.txt"
    try:
        async with source_policy.async_client(
            policy, timeout=config.timeout_seconds, follow_redirects=True
        ) as client:
            response = await client.get(url, headers={"User-Agent": USER_AGENT})
    except httpx.TimeoutException:
        return f"Replication state {url} timed out after {config.timeout_seconds:g} s"
    except httpx.HTTPError as exc:
        return f"Replication state {url} is unreachable: {str(exc)[:200]}"
    if response.status_code >= 400:
        return f"Replication state {url} returned HTTP {response.status_code}"
    return f"Replication state {url} is malformed (needs sequenceNumber= and timestamp=)"


def _diff_error(seq: int, url: str, exc: requests.RequestException, timeout: float) -> str:
    if isinstance(exc, RefusedByPolicy):
        return f"Diff {seq} ({url}) refused: {exc.refusal.message}"
    if isinstance(exc, requests.Timeout):
        return f"Diff {seq} ({url}) timed out after {timeout:g} s"
    if exc.response is not None:
        return f"Diff {seq} ({url}) returned HTTP {exc.response.status_code}"
    return f"Diff {seq} ({url}) could not be downloaded: {str(exc)[:200]}"


async def _poll_replication(
    db: Database,
    source: DataSource,
    config: PollConfig,
    policy: SourcePolicy,
    progress: Progress,
    publish: Publish | None,
) -> dict[str, Any]:
    server = _replication_server(config, policy)
    try:
        return await _replicate(db, source, config, policy, server, progress, publish)
    finally:
        server.close()


async def _replicate(
    db: Database,
    source: DataSource,
    config: PollConfig,
    policy: SourcePolicy,
    server: ReplicationServer,
    progress: Progress,
    publish: Publish | None,
) -> dict[str, Any]:
    state = await asyncio.to_thread(server.get_state_info)
    if state is None:
        raise UpstreamError(await _state_error(config, policy))
    last = source.sequence_number
    if last is None and config.start_sequence is None:
        # No starting point: follow the changes from now on.
        await _store_sequence(db, source.id, state.sequence)
        return {"sequence_number": state.sequence, "diffs": 0, "initialized": True}
    last = config.start_sequence if last is None else last
    assert last is not None
    if last > state.sequence:
        raise UpstreamError(
            f"The stored sequence {last} is ahead of the server's {state.sequence} "
            "(another replication server?)"
        )
    end = min(state.sequence, last + config.max_diffs)
    report = IngestReport()
    with tempfile.TemporaryDirectory(prefix="wb-osm-diff-") as tmp:
        for seq in range(last + 1, end + 1):
            url = server.get_diff_url(seq)
            try:
                data = await asyncio.to_thread(server.get_diff_block, seq)
            except RefusedByPolicy as exc:
                raise exc.refusal from None
            except requests.RequestException as exc:
                raise UpstreamError(_diff_error(seq, url, exc, config.timeout_seconds)) from None
            path = Path(tmp) / f"{seq}.osc.gz"
            path.write_bytes(cast(bytes, data))  # pyosmium says str; it is bytes
            try:
                batch = await import_file(
                    db,
                    path,
                    source_id=source.id,
                    name=path.name,
                    publish=publish,
                    channel="replication",
                )
            except BadInput as exc:
                raise UpstreamError(f"Diff {seq} ({url}) is malformed: {exc.message}") from None
            finally:
                path.unlink(missing_ok=True)
            report.add(batch)
            await _store_sequence(db, source.id, seq)
            await progress((seq - last) / (end - last), f"applied diff {seq} of {state.sequence}")
    return {
        **report.summary(),
        "sequence_number": end,
        "diffs": end - last,
        "behind": state.sequence - end,
        "server_timestamp": state.timestamp.isoformat(),
    }


async def _store_sequence(db: Database, source_id: str, seq: int) -> None:
    # Never backwards: a concurrent poll may already be further.
    async with db.sessionmaker() as session:
        await session.execute(
            update(DataSource)
            .where(DataSource.id == source_id)
            .where(or_(DataSource.sequence_number.is_(None), DataSource.sequence_number < seq))
            .values(sequence_number=seq)
            .execution_options(synchronize_session=False)
        )
        await session.commit()


# --- overpass ------------------------------------------------------------------------------------


async def fetch_overpass(config: PollConfig, policy: SourcePolicy | None = None) -> Any:
    """The Overpass answer under `policy` (each redirect hop and connection checked)."""
    assert config.query is not None
    where = f"Overpass at {config.url}"
    body = bytearray()
    try:
        async with source_policy.async_client(
            policy or SourcePolicy(),
            timeout=config.timeout_seconds,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            if config.method == "GET":
                request = client.build_request("GET", config.url, params={"data": config.query})
            else:
                request = client.build_request("POST", config.url, data={"data": config.query})
            response = await client.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    text = (await response.aread())[:300].decode("utf-8", "replace").strip()
                    raise UpstreamError(f"{where} returned HTTP {response.status_code}: {text}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise UpstreamError(f"{where} sent more than {MAX_RESPONSE_BYTES} bytes")
            finally:
                await response.aclose()
    except httpx.TimeoutException:
        raise UpstreamError(f"{where} timed out after {config.timeout_seconds:g} s") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{where} is unreachable: {str(exc)[:200]}") from None
    try:
        payload = json.loads(body)
    except ValueError:
        raise UpstreamError(f"{where} sent malformed JSON (use [out:json])") from None
    remark = payload.get("remark") if isinstance(payload, dict) else None
    if isinstance(remark, str) and "error" in remark.lower():
        # A runtime error (timeout, memory) comes with partial results: keep none.
        raise UpstreamError(f"{where} reported: {remark[:500]}")
    return payload


async def _poll_overpass(
    db: Database,
    source: DataSource,
    config: PollConfig,
    policy: SourcePolicy,
    progress: Progress,
    publish: Publish | None,
) -> dict[str, Any]:
    payload = await fetch_overpass(config, policy)
    max_vertices = db.settings.worldbase_max_feature_vertices
    try:
        elements, rejected = parse_payload(payload, max_vertices=max_vertices)
    except BadInput as exc:
        raise UpstreamError(f"Overpass at {config.url} sent no OSM JSON: {exc.message}") from None
    report = IngestReport()
    total = max(len(elements), 1)
    # In response order (nodes before the ways that use them), a commit per batch.
    for start in range(0, total, BATCH):
        async with db.sessionmaker() as session:
            current = await session.get(DataSource, source.id)
            batch = await ingest(
                session,
                elements=elements[start : start + BATCH],
                rejected=rejected if start == 0 else [],
                source=current,
                channel="overpass",
                max_vertices=max_vertices,
            )
        report.add(batch)
        if publish is not None:
            publish(batch)
        done = min(start + BATCH, total)
        await progress(done / total, f"{done} of {len(elements)} elements")
    return report.summary()
