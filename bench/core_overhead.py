"""What the core adds per request: Worldbase `GET /` (request id, metrics, error handling,
body limit) against a bare FastAPI endpoint, both under uvicorn with one worker.

Prints one line per figure: ours, anchor, ratio (ours/anchor). Medians of 3 runs.
"""

from __future__ import annotations

import statistics
import tempfile

from bench.common import free_port, load, python, server


def run(seconds: int = 5, repeats: int = 3) -> None:
    data_dir = tempfile.mkdtemp(prefix="wb-bench-")
    ours_port, anchor_port = free_port(), free_port()
    uvicorn = [python(), "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
    env = {
        "WORLDBASE_DATA_DIR": data_dir,
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": "bench-" + "x" * 40,
    }
    with (
        server(
            [*uvicorn, "--port", str(ours_port), "--factory", "worldbase.app:create_app_from_env"],
            ours_port,
            env,
        ) as ours,
        server(
            [*uvicorn, "--port", str(anchor_port), "bench.anchors.bare_fastapi:app"], anchor_port
        ) as anchor,
    ):
        for connections in (1, 8):
            ours_rps, anchor_rps, ours_p50, anchor_p50 = [], [], [], []
            for _ in range(repeats):  # interleaved, so drift hits both alike
                a = load(anchor + "/", seconds=seconds, connections=connections)
                o = load(ours + "/", seconds=seconds, connections=connections)
                ours_rps.append(o.requests_per_second)
                anchor_rps.append(a.requests_per_second)
                ours_p50.append(o.p50_ms)
                anchor_p50.append(a.p50_ms)
            o_rps, a_rps = statistics.median(ours_rps), statistics.median(anchor_rps)
            o_p50, a_p50 = statistics.median(ours_p50), statistics.median(anchor_p50)
            print(
                f"core GET / c={connections}: ours {o_rps:.0f} req/s (p50 {o_p50:.2f} ms)"
                f" | bare FastAPI {a_rps:.0f} req/s (p50 {a_p50:.2f} ms)"
                f" | ratio {o_rps / a_rps:.2f}"
            )


if __name__ == "__main__":
    run()
