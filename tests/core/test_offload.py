"""Large request work runs in worker processes: errors come back as domain errors, and the
workers never outlive a parent killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from worldbase.core import offload
from worldbase.core.errors import BadInput


async def test_small_work_runs_inline_and_large_work_in_a_worker_process() -> None:
    assert await offload.run_sized(10, os.getpid) == os.getpid()
    worker = await offload.run_sized(offload.OFFLOAD_BYTES + 1, os.getpid)
    assert worker != os.getpid()
    offload.shutdown()


async def test_a_domain_error_in_a_worker_comes_back_as_itself() -> None:
    raw = b"[" * (offload.OFFLOAD_BYTES + 1)
    with pytest.raises(BadInput) as caught:
        await offload.run_sized(len(raw), offload.loads_object, raw)
    assert caught.value.message == "Body is not valid JSON"
    assert caught.value.detail[0]["type"] == "json_invalid"
    offload.shutdown()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent is dead; init reaps it).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_workers_leave_when_their_parent_is_killed() -> None:
    script = textwrap.dedent(
        """
        import asyncio, os, sys, time
        from worldbase.core import offload

        async def main():
            pid = await offload.run_sized(offload.OFFLOAD_BYTES + 1, os.getpid)
            print(pid, flush=True)
            time.sleep(60)

        asyncio.run(main())
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the worker outlived its killed parent"
    finally:
        parent.kill()
