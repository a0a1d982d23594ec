"""CPU-bound work of a request (JSON, geometry) off the event loop once it is large.

A few KB parse faster than a thread hop costs; megabytes would stall every other request
on the loop (a 1e6-vertex LineString stalled `/health` for 10 s). Above `OFFLOAD_BYTES`
the work runs in the thread pool instead.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from worldbase.core.errors import BadInput

T = TypeVar("T")
OFFLOAD_BYTES = 64 * 1024


async def run_sized(size: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`: inline for small inputs, in a worker thread past OFFLOAD_BYTES."""
    if size <= OFFLOAD_BYTES:
        return fn(*args, **kwargs)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def _loads_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
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


async def json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object body, decoded off the loop when large (422 when not an object)."""
    return await run_sized(len(raw), _loads_object, raw)


def dumps_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
