"""CPU-bound work of a request (JSON, geometry) off the event loop once it is large.

A few KB parse faster than any hop costs; megabytes would stall every other request on
the loop (a 1e6-vertex LineString stalled `/health` for 10 s). A worker thread does not
help there: `json.loads`, shapely's GeoJSON writer and the encoders hold the GIL for the
whole call. So past `OFFLOAD_BYTES` the work runs in a small pool of worker *processes*
(spawned, so no thread state is forked), and only bytes and compact results cross over
(shapely geometries pickle as WKB). Functions sent there must be module-level and pure.
"""

from __future__ import annotations

import asyncio
import functools
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from worldbase.core.errors import BadInput, DomainError

T = TypeVar("T")
OFFLOAD_BYTES = 64 * 1024
PROCESS_WORKERS = max(1, min(2, os.cpu_count() or 1))

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _exit_with_parent(parent: int) -> None:
    # A worker holds both ends of its task pipe, so a parent killed with SIGKILL leaves it
    # waiting forever: it watches the parent instead and leaves with it.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="offload-parent-watch", daemon=True).start()


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=PROCESS_WORKERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return _pool


def shutdown() -> None:
    """Stop the worker processes (at application shutdown; a later call starts new ones)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    # Domain errors cross back as data: their keyword-only constructor does not unpickle.
    try:
        return ("ok", fn(*args, **kwargs))
    except DomainError as exc:
        return ("error", type(exc), exc.message, exc.detail, exc.headers)


async def run_sized(size: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`: inline for small inputs, in a worker process past OFFLOAD_BYTES."""
    if size <= OFFLOAD_BYTES:
        return fn(*args, **kwargs)
    loop = asyncio.get_running_loop()
    call = functools.partial(_call, fn, args, kwargs)
    try:
        outcome = await loop.run_in_executor(_executor(), call)
    except BrokenProcessPool:
        shutdown()  # a worker died (killed, out of memory): the next call gets a fresh pool
        raise
    if outcome[0] == "error":
        _, cls, message, detail, headers = outcome
        raise cls(message, detail=detail, headers=headers)
    result: T = outcome[1]
    return result


def loads_object(raw: bytes) -> dict[str, Any]:
    """A JSON object body (422 when it is not JSON or not an object)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's depth
        raise BadInput(
            "Body is not valid JSON",
            detail=[{"loc": ["body"], "msg": "Body is not valid JSON", "type": "json_invalid"}],
        ) from None
    if not isinstance(value, dict):
        raise BadInput(
            "Invalid request: body",
            detail=[{"loc": ["body"], "msg": "Input should be an object", "type": "dict_type"}],
        )
    return value
