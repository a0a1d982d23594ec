"""The checks: each returns a `Check` (name, ok, figures, evidence) for the report.

A check fails on the first piece of evidence against it, and its evidence lists the
requests (kind, status, time, fault window) or objects that made it fail, capped so the
report stays readable.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.cluster.faults import FaultWindow
from tests.cluster.records import Record
from tests.cluster.workload import World

EVIDENCE_CAP = 60
GROUP_EXAMPLES = 3  # examples kept per (kind, status, window)


@dataclass
class Check:
    name: str
    ok: bool
    figures: dict[str, Any] = field(default_factory=dict)
    evidence: list[Any] = field(default_factory=list)

    def fail(self, item: Any, group: str | None = None) -> None:
        """Count a failure; with `group`, the evidence keeps the first few of each group and
        `figures["failures_by_group"]` counts them all."""
        self.ok = False
        self.figures["failures"] = self.figures.get("failures", 0) + 1
        if group is None:
            if len(self.evidence) < EVIDENCE_CAP:
                self.evidence.append(item)
            return
        groups = self.figures.setdefault("failures_by_group", {})
        groups[group] = groups.get(group, 0) + 1
        if groups[group] <= GROUP_EXAMPLES and len(self.evidence) < EVIDENCE_CAP:
            self.evidence.append(item)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 1)  # milliseconds


def latency_table(records: list[Record]) -> dict[str, Any]:
    by_kind: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_kind[record.kind].append(record)
    table = {}
    for kind, rows in sorted(by_kind.items()):
        ok = [r.end - r.start for r in rows if 200 <= r.status < 300]
        table[kind] = {
            "requests": len(rows),
            "ok": len(ok),
            "p50_ms": percentile(ok, 0.5),
            "p99_ms": percentile(ok, 0.99),
            "statuses": dict(Counter(str(r.status) for r in rows)),
        }
    return table


def _window_of(record: Record, windows: list[FaultWindow], bound: float) -> str | None:
    for window in windows:
        if record.start <= window.end + bound and record.end >= window.start:
            return window.name
    return None


def _describe(record: Record, window: str | None) -> dict[str, Any]:
    return {
        "kind": record.kind,
        "request": f"{record.method} {record.path}",
        "via": record.via,
        "status": record.status,
        "retry_after": record.retry_after,
        "start_s": round(record.start, 2),
        "end_s": round(record.end, 2),
        "window": window,
        "error": record.error,
    }


def check_statuses(records: list[Record], windows: list[FaultWindow], bound: float) -> list[Check]:
    """Failures are 503 + Retry-After, only in a fault window (or its recovery bound)."""
    never_500 = Check("no 5xx other than 503, no unanswered request", True)
    with_retry = Check("every 503 carries Retry-After", True)
    outside = Check("no failure outside fault windows (+ recovery bound), no 4xx in them", True)
    for record in records:
        window = _window_of(record, windows, bound)
        group = f"{record.kind} {record.status} in {window or 'no fault window'}"
        if record.status == 0 or (record.status >= 500 and record.status != 503):
            never_500.fail(_describe(record, window), group)
        if record.status == 503 and not record.retry_after:
            with_retry.fail(_describe(record, window), group)
        if not 200 <= record.status < 300 and window is None:
            outside.fail(_describe(record, window), group)
        if 400 <= record.status < 500 and window is not None and record.status != 429:
            # A 4xx inside a window is a lost write or a wrong answer, not a fail-soft 503.
            outside.fail(_describe(record, window) | {"note": "4xx inside a fault window"}, group)
    return [never_500, with_retry, outside]


def per_window(records: list[Record], windows: list[FaultWindow], bound: float) -> Check:
    """Statuses per fault window and request kind, and each kind's recovery time."""
    check = Check(f"each kind recovers within {bound:.0f} s of the fault's end", True)
    report: dict[str, Any] = {}
    for window in windows:
        during: dict[str, Counter[str]] = defaultdict(Counter)
        after: dict[str, Counter[str]] = defaultdict(Counter)
        for record in records:
            if record.start <= window.end and record.end >= window.start:
                during[record.kind][str(record.status)] += 1
            elif window.end < record.start <= window.end + bound:
                after[record.kind][str(record.status)] += 1
        # Recovery of a kind: from the fault's end to its first success (the harness probes
        # every kind right after each fault), looking no further than the next fault.
        following = [w.start for w in windows if w.start > window.end]
        horizon = min(following, default=float("inf"))
        recovery: dict[str, float | None] = {}
        for kind in sorted({r.kind for r in records}):
            later = sorted(
                (r for r in records if r.kind == kind and window.end <= r.start < horizon),
                key=lambda r: r.start,
            )
            if not later:
                continue
            first_ok = next((r for r in later if 200 <= r.status < 300), None)
            seconds = None if first_ok is None else round(first_ok.end - window.end, 2)
            recovery[kind] = seconds
            if seconds is None or seconds > bound:
                check.fail(
                    {
                        "window": window.name,
                        "kind": kind,
                        "recovery_s": seconds,
                        "first_requests_after": [_describe(r, window.name) for r in later[:3]],
                    }
                )
        report[window.name] = {
            "start_s": round(window.start, 2),
            "end_s": round(window.end, 2),
            "detail": window.detail,
            "during": {k: dict(v) for k, v in sorted(during.items())},
            "recovery_period": {k: dict(v) for k, v in sorted(after.items())},
            "errors_during": sum(
                n for c in during.values() for s, n in c.items() if not s.startswith("2")
            ),
            "recovery_s": recovery,
            "max_recovery_s": max((s for s in recovery.values() if s is not None), default=None),
        }
    check.figures["windows"] = report
    return check


# --- WebSocket delivery during the load -----


def check_ws_delivery(world: World, windows: list[FaultWindow], bound: float) -> Check:
    """A subscriber connected throughout an acked ingest (outside fault windows) got its event."""
    check = Check("OSM WebSocket subscribers get every acked ingest (outside fault windows)", True)
    figures = {}
    for log in world.ws_logs:
        expected = received = 0
        for osm_id, start, end in world.acked.osm_nodes:
            if any(start <= w.end + bound and end >= w.start for w in windows):
                continue
            if not any(a <= start - 0.5 and b >= end + 3.0 for a, b in log.intervals):
                continue
            expected += 1
            if str(osm_id) in log.received:
                received += 1
            else:
                check.fail(
                    {
                        "subscriber": log.name,
                        "via": log.via,
                        "osm_id": osm_id,
                        "acked_at_s": round(end, 2),
                    }
                )
        delays = [
            log.received[str(i)] - e for i, _, e in world.acked.osm_nodes if str(i) in log.received
        ]
        figures[log.name] = {
            "via": log.via,
            "connections": len(log.intervals),
            "expected": expected,
            "received": received,
            "received_total": len(log.received),
            "p50_delay_ms": percentile([max(d, 0.0) for d in delays], 0.5),
            "drops": log.errors[:10],
        }
    check.figures["subscribers"] = figures
    if not world.ws_logs:
        check.fail("no subscriber ran")
    return check
