"""Transaction outcomes and durations, observed by the engine as they happen."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DURATION = Histogram(
    "gfs_transaction_duration_seconds",
    "Time from recording a transaction to its end (done or rolled back)",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=None,
)
FINISHED = Counter(
    "gfs_transactions_finished",
    "Transactions run by this gfsd, by how they ended (done, rolled_back, failed)",
    ["kind", "outcome"],
    registry=None,
)
METRICS = (DURATION, FINISHED)

#: Known kinds, so that their series exist (at 0) before the first transaction runs.
KINDS = ("volume_create", "volume_start", "volume_stop", "volume_delete")
OUTCOMES = ("done", "rolled_back", "failed")
for _k in KINDS:
    DURATION.labels(_k)
    for _o in OUTCOMES:
        FINISHED.labels(_k, _o)


def finished(kind: str, outcome: str, seconds: float) -> None:
    DURATION.labels(kind).observe(seconds)
    FINISHED.labels(kind, outcome).inc()
