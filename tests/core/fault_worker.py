"""A job worker process with a test job kind: what `worldbase worker` runs (`run_worker`),
plus `fault.sleep`. The worker fault tests start it, kill it and stop it.

    python -m tests.core.fault_worker   (settings from the environment)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from worldbase.core.jobs import JobContext, job_handler, run_worker


@job_handler("fault.sleep")
async def _sleep(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    # FAULT_SLOW=1 makes this worker the one that is killed mid-job.
    seconds = 60.0 if os.environ.get("FAULT_SLOW") == "1" else float(params.get("seconds", 0.2))
    await asyncio.sleep(seconds)
    return {"pid": os.getpid()}


if __name__ == "__main__":
    from worldbase.core.http import configure_logging
    from worldbase.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, json_logs=False)
    run_worker(settings)
