"""No temp folder or staged upload outlives its job: killed, cancelled or failed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.core import test_jobs
from tests.core.test_jobs import Runtimes, wait_for_job
from worldbase.core.cleanup import register_staging_prefix, staging, sweep_temp, work_dir
from worldbase.core.jobs import JobRuntime
from worldbase.core.models import JobStatus

runtimes = test_jobs.runtimes  # the same fixture: real queue, hub and database
PREFIX = "test-staging/"
register_staging_prefix(PREFIX)


def test_work_dir_of_a_killed_process_is_swept(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from worldbase.core.cleanup import work_dir\n"
        "with work_dir('samsyn-cog') as d:\n"
        "    (d / 'cog.tif').write_bytes(b'x' * 1_000_000)\n"
        "    print(d, flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    path = Path(proc.stdout.readline().strip())
    assert (path / "cog.tif").exists()
    os.kill(proc.pid, signal.SIGKILL)  # no finally runs
    proc.wait(timeout=10)
    assert path.exists()

    legacy = Path(tempfile.mkdtemp(prefix="samsyn-cog-"))
    old = time.time() - 7200
    os.utime(legacy, (old, old))
    fresh_legacy = Path(tempfile.mkdtemp(prefix="samsyn-import-"))
    with work_dir("samsyn-cog") as mine:  # in use by this live process: kept
        removed = sweep_temp(grace=3600)
        assert mine.exists()
    assert path in removed and not path.exists()
    assert legacy in removed and not legacy.exists()
    assert fresh_legacy.exists()  # a legacy folder within the grace may still be in use
    fresh_legacy.rmdir()
    assert not mine.exists()  # removed by its own finally


async def _put(runtime: JobRuntime, key: str) -> None:
    await runtime.storage.put(key, b"staged bytes")


async def _gone(runtime: JobRuntime, key: str, timeout: float = 5.0) -> bool:
    """The job's row ends first, then its staged objects go: wait for that."""
    deadline = time.monotonic() + timeout
    while await runtime.storage.exists(key):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_failed_and_cancelled_jobs_drop_their_staged_uploads(runtimes: Runtimes) -> None:
    runtime = await runtimes.start()
    failing = f"{PREFIX}fail.bin"
    await _put(runtime, failing)
    job = await runtime.enqueue(kind="test.fail", params=staging(failing), max_attempts=1)
    assert (await wait_for_job(runtime, job.id)).status == JobStatus.failed
    assert await _gone(runtime, failing)

    cancelled = f"{PREFIX}cancel.bin"
    await _put(runtime, cancelled)
    steps = await runtime.enqueue(
        kind="test.steps", params={"steps": 1000, "delay": 0.05} | staging(cancelled)
    )
    await wait_for_job(runtime, steps.id, until=lambda j: j.progress > 0.005)
    await runtime.cancel(steps.id)
    assert (await wait_for_job(runtime, steps.id)).status == JobStatus.cancelled
    assert await _gone(runtime, cancelled)


async def test_cancel_of_a_queued_job_drops_its_upload(runtimes: Runtimes) -> None:
    producer = await runtimes.start(consumer=False)
    key = f"{PREFIX}queued.bin"
    await _put(producer, key)
    job = await producer.enqueue(kind="test.echo", params=staging(key))
    await producer.cancel(job.id)
    assert not await producer.storage.exists(key)


async def test_start_up_sweeps_orphans_but_keeps_what_live_jobs_own(runtimes: Runtimes) -> None:
    runtimes.settings = runtimes.settings.model_copy(update={"worldbase_orphan_grace": 2.0})
    producer = await runtimes.start(consumer=False)
    orphan, owned, young = f"{PREFIX}orphan.bin", f"{PREFIX}owned.bin", f"{PREFIX}young.bin"
    for key in (orphan, owned):
        await _put(producer, key)
    job = await producer.enqueue(kind="test.echo", params=staging(owned))
    await runtimes.stop(producer)  # e.g. killed: the job is still queued
    await asyncio.sleep(2.2)  # (S3 listings give whole seconds)
    await _put(producer, young)  # an upload whose request is still enqueueing its job
    restarted = await runtimes.start(consumer=False)
    assert not await restarted.storage.exists(orphan)
    assert await restarted.storage.exists(owned) and await restarted.storage.exists(young)
    # The job runs and ends: what it owned goes with it.
    consumer = await runtimes.start()
    assert (await wait_for_job(consumer, job.id)).status == JobStatus.succeeded
    assert await _gone(consumer, owned)
