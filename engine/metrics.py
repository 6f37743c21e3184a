"""Prometheus metrics the engine and the domains record, and the pipeline's observer hook.

Metric objects are process-wide by prometheus-client's design (one registry per process, or one file per
process and metric in multiprocess mode, which ``questline serve`` turns on for several workers), so they
are module constants here: the one module outside ``web`` that imports ``prometheus_client``. The HTTP
layer (``web/metrics.py``) counts what the pipeline returns, serves ``/metrics`` and adds the gauges
read at scrape time (outbox backlog, database pool, Redis).

Label cardinality is bounded: brands are labelled by their slug under a configured cap
(``QUESTLINE_METRICS_BRAND_LABELS``, set once per process by :func:`label_brands`), webhook endpoints up to
:data:`ENDPOINT_LABEL_CAP`, stages and jobs by their fixed names.

Domain outcomes that happen outside the pipeline (a redemption, an expiry, a tier review, a badge granted by
the console or a board's prize) are counted where they are written, with :func:`count_on_commit`: the
count lands when the session's transaction commits and is dropped when it (or the savepoint it was made
in) rolls back, so a retried or refused request never counts.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from prometheus_client import Counter, Gauge, Histogram, values
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from contextlib import AbstractAsyncContextManager

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.pipeline import EventResult
    from engine.tenants import Brand

_PID = os.getpid()


def _remember_pid() -> None:
    global _PID  # one number per process, refreshed in a forked child
    _PID = os.getpid()


def _worker_pid() -> int:
    """This process's id, asked for once per process rather than on every move of a value."""
    return _PID


os.register_at_fork(after_in_child=_remember_pid)
if values.ValueClass is not values.MutexValue:
    # Multiprocess mode (PROMETHEUS_MULTIPROC_DIR): each move of a value first checks whether the process
    # forked, with a getpid() system call (5 per HTTP request, a few per cent of a board read's CPU). The
    # same check against the pid remembered at start and after each fork. Set before any metric exists:
    # the metrics below are the first of the process (the HTTP ones are made at the first request).
    values.ValueClass = values.MultiProcessValue(process_identifier=_worker_pid)  # type: ignore[no-untyped-call]

#: Webhook endpoints with an id up to this get their own ``endpoint`` label; the others share ``other``.
ENDPOINT_LABEL_CAP = 200

_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

EVENTS_INGESTED = Counter("questline_events_ingested_total", "New events applied by the pipeline", ["brand"])
EVENTS_DUPLICATE = Counter(
    "questline_events_duplicate_total", "Events answered as duplicates (already applied)", ["brand"]
)
EVENTS_REFUSED = Counter(
    "questline_events_refused_total", "Requests to POST /v1/events refused as a whole, by reason", ["reason"]
)
POINTS_AWARDED = Counter(
    "questline_points_awarded_total", "Points credited to members, by what earned them", ["brand", "source"]
)
POINTS_SPENT = Counter("questline_points_spent_total", "Points debited from members (redemptions)", ["brand"])
POINTS_EXPIRED = Counter("questline_points_expired_total", "Points that expired", ["brand"])
POINTS_ADJUSTED = Counter(
    "questline_points_deducted_total", "Points debited by corrections (negative adjustments)", ["brand"]
)
CHALLENGE_COMPLETIONS = Counter("questline_challenge_completions_total", "Challenge completions", ["brand"])
BADGE_AWARDS = Counter("questline_badge_awards_total", "Badges (or badge levels) awarded", ["brand"])
REDEMPTIONS = Counter("questline_redemptions_total", "Rewards redeemed", ["brand"])
TIER_CHANGES = Counter("questline_tier_changes_total", "Members moving to another tier", ["brand"])
EFFECTS = Counter("questline_effects_total", "Effects the pipeline returned, by type", ["effect"])

STAGE_SECONDS = Histogram(
    "questline_pipeline_stage_seconds",
    "Time spent in one pipeline step, in the transaction or after commit",
    ["stage", "phase"],
    buckets=_STAGE_BUCKETS,
)
PREFOLDED_EVENTS = Counter(
    "questline_prefold_events_total",
    "Events of units folded before their locks (QUESTLINE_PREFOLD_MIN_EVENTS), by what a step did with them under"
    " the locks: kept (the member's inputs were unchanged) or folded again",
    ["stage", "outcome"],
)
COALESCED_EVENTS = Histogram(
    "questline_coalesced_batch_events",
    "Single-event requests processed together as one coalesced batch (QUESTLINE_COALESCE_MS)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1000),
)
STAGE_FAILURES = Counter(
    "questline_pipeline_stage_failures_total",
    "Pipeline steps that raised (after commit: derived state left for repair)",
    ["stage", "phase"],
)
DELIVERIES = Counter(
    "questline_webhook_deliveries_total", "Webhook delivery attempts per endpoint, by outcome", ["endpoint", "outcome"]
)
JOB_RUNS = Counter("questline_job_runs_total", "Background job rounds, by outcome", ["job", "outcome"])
JOB_SECONDS = Histogram("questline_job_duration_seconds", "Duration of one background job round", ["job"])
JOB_LAST_SUCCESS = Gauge(
    "questline_job_last_success_timestamp_seconds",
    "Unix time of the job's last successful round (lag = time() - this)",
    ["job"],
    multiprocess_mode="max",
)
DB_POOL_IN_USE = Gauge(
    "questline_db_pool_in_use", "Database connections checked out, summed over workers", multiprocess_mode="livesum"
)


class _BrandLabels:
    """How many brands (by id) are labelled by their slug in this process; the others share ``other``."""

    cap = 20


def label_brands(cap: int) -> None:
    """Label the first ``cap`` brands (by id) by their slug (``QUESTLINE_METRICS_BRAND_LABELS``; same in every worker)."""
    _BrandLabels.cap = cap


def brand_label(brand: Brand) -> str:
    """The ``brand`` label: the brand's slug under the cap, ``other`` beyond (bounded cardinality)."""
    return brand.slug if brand.id <= _BrandLabels.cap else "other"


_PENDING = "questline.metrics.pending"


def count_on_commit(session: AsyncSession, counter: Counter, brand: Brand, *labels: str, amount: float = 1) -> None:
    """Add ``amount`` to ``counter`` (labels: the brand's, then ``labels``) once the session's transaction commits."""
    if amount <= 0:
        return
    sync = session.sync_session
    within = sync.get_nested_transaction() or sync.get_transaction()
    sync.info.setdefault(_PENDING, []).append((within, counter, (brand_label(brand), *labels), amount))


def _inside(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    if session.get_nested_transaction() is not None:  # a savepoint released: its counts wait for the transaction
        return
    for _within, counter, labels, amount in session.info.pop(_PENDING, ()):
        counter.labels(*labels).inc(amount)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: list[Any] | None = session.info.get(_PENDING)
    if pending:
        pending[:] = [item for item in pending if not _inside(item[0], previous_transaction)]


@event.listens_for(Session, "after_transaction_end")
def _drop_unfinished(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended without a commit: nothing happened
        session.info.pop(_PENDING, None)


def endpoint_label(endpoint_id: int) -> str:
    """The ``endpoint`` label of a webhook endpoint (bounded by :data:`ENDPOINT_LABEL_CAP`)."""
    return str(endpoint_id) if endpoint_id <= ENDPOINT_LABEL_CAP else "other"


def delivery_outcome(status: int | None, *, refused: bool = False) -> str:
    """The outcome label of one attempt: ``ok``, ``gone``, ``http_4xx``, ``http_5xx``, ``network`` or ``refused``."""
    if refused:
        return "refused"
    if status is None:
        return "network"
    if 200 <= status < 300:
        return "ok"
    if status == 410:
        return "gone"
    return "http_4xx" if status < 500 else "http_5xx"


def record_delivery(endpoint_id: int, status: int | None, *, refused: bool = False) -> None:
    """Count one delivery attempt to an endpoint (``status`` None: no answer; ``refused``: address not allowed)."""
    DELIVERIES.labels(endpoint_label(endpoint_id), delivery_outcome(status, refused=refused)).inc()


@contextlib.asynccontextmanager
async def job_run(job: str) -> AsyncIterator[None]:
    """Count one round of a background job, its duration, and when it last succeeded (errors propagate)."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        JOB_RUNS.labels(job, "error").inc()
        raise
    finally:
        JOB_SECONDS.labels(job).observe(time.perf_counter() - started)
    JOB_RUNS.labels(job, "ok").inc()
    JOB_LAST_SUCCESS.labels(job).set(time.time())


class PipelineObserver(Protocol):
    """What the pipeline reports while it runs: each step's time, and each request's results."""

    def stage(self, name: str, phase: str) -> AbstractAsyncContextManager[None]:
        """Surround one step (``phase`` is ``prefold``, ``process`` or ``after_commit``)."""
        ...

    def processed(self, brand: Brand, results: Sequence[EventResult]) -> None:
        """Account for one request's results (new and duplicate events, their effects)."""
        ...


class _Stage:
    """One step's timing: a plain async context manager (a generator-based one costs more per step)."""

    __slots__ = ("_failures", "_seconds", "_started")

    def __init__(self, seconds: Any, failures: Any) -> None:
        self._seconds = seconds
        self._failures = failures
        self._started = 0.0

    async def __aenter__(self) -> None:
        self._started = time.perf_counter()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if kind is not None and issubclass(kind, Exception):
            self._failures.inc()
        self._seconds.observe(time.perf_counter() - self._started)


class StageTimer:
    """The default observer: times each step; the HTTP layer's observer also counts results and traces."""

    _children: ClassVar[dict[tuple[str, str], tuple[Any, Any]]] = {}
    """(step, phase) → its labelled duration and failure children (steps × phases: a bounded set)."""

    def stage(self, name: str, phase: str) -> AbstractAsyncContextManager[None]:
        """Observe the step's duration; count it as failed if it raised."""
        found = StageTimer._children.get((name, phase))
        if found is None:
            found = StageTimer._children[(name, phase)] = (
                STAGE_SECONDS.labels(name, phase),
                STAGE_FAILURES.labels(name, phase),
            )
        return _Stage(*found)

    def processed(self, brand: Brand, results: Sequence[EventResult]) -> None:
        """Nothing to count here."""
