"""Prometheus metrics of one Governor: ``gov.metrics()`` (text format), ``metrics_app(gov)`` (ASGI ``/metrics``).

The hot path only counts: one uncontended lock, a dict increment and a bucket increment per decision
(``DecisionCounters.decided``, well under a microsecond). Everything else is read when Prometheus scrapes, from
state the governor keeps anyway (trust cache, identity cache, audit and sink health) or from the store
(pending escalations: one query per scrape, never per call).

Metric names (all prefixed ``claw_``):

=========================================== ======= ==========================================================
``decisions_total{agent,outcome}``          counter decisions made by this process
``audit_append_seconds``                    histo   time to write a decision's audit entry (before the tool runs)
``escalations_pending``                     gauge   pending escalations in the (shared) store
``escalation_oldest_pending_age_seconds``   gauge   age of the oldest pending one (0 when none)
``escalations_overdue{sla_seconds}``        gauge   pending ones older than the escalation SLA
``trust_score{agent}``                      gauge   current trust score per known agent
``identities_revoked``                      gauge   identities revoked now
``identities``                              gauge   identities known
``audit_last_seq``                          gauge   newest entry of the local trail
``audit_unanchored_entries``                gauge   entries after the newest signed checkpoint
``audit_unreplicated_entries``              gauge   entries not yet in the fleet audit sink (AUDIT_SINK)
``audit_replication_lag_seconds``           gauge   age of the oldest entry not yet in the sink
``audit_disk_free_ratio``                   gauge   free fraction of the file system under the audit path
``audit_last_verify_timestamp_seconds``     gauge   when ``claw-gov audit verify`` last ran on this trail
``audit_last_verify_valid``                 gauge   1 if that run found the chain intact, 0 if not
``policy_reload_failures_total``            counter policy reloads that failed (the old policy stayed)
``plugin_faults_total{component}``          counter faults (plugin, audit, trust, notify ...) seen
``state_sync_ok``                           gauge   1 if the last sync with the state store worked
``component_ok{component}``                 gauge   1 per health_check component that is "ok"
=========================================== ======= ==========================================================
"""

from __future__ import annotations

import bisect
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from claw_governance.governor import Governor

#: Upper bounds (seconds) of the audit append histogram: the append takes microseconds, fsync ~0.2 ms.
AUDIT_BUCKETS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25, 1.0)
MAX_AGENT_SERIES = 2000  # agents beyond this are counted under agent="_other": labels stay bounded
ESCALATION_SLA_SECONDS = 24 * 3600.0  # the seed checklist's example SLA
LAST_VERIFY_FILE = "last-verify.json"  # in the state folder; written by `claw-gov audit verify`


class DecisionCounters:
    """What the hot path records: decisions by (agent, outcome), audit append latency, faults, reload failures.

    ``decided`` only appends a tuple to a deque (atomic in CPython, ~0.1 us); the tuples are folded into the
    counters under a lock when a scrape asks (``snapshot``) or when 4096 are waiting, so the memory stays
    bounded and no count is lost between threads.
    """

    FOLD_AT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[str, str, float]] = deque()
        self.decisions: dict[tuple[str, str], int] = {}
        self.buckets = [0] * (len(AUDIT_BUCKETS) + 1)
        self.audit_sum = 0.0
        self.faults: dict[str, int] = {}
        self.reload_failures = 0
        self._agents: set[str] = set()

    def decided(self, agent_id: str, outcome: str, audit_seconds: float) -> None:
        """Count one decision and the time its audit entry took."""
        queue = self._queue
        queue.append((agent_id, outcome, audit_seconds))
        if len(queue) > self.FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        with self._lock:
            queue, decisions, buckets, agents = self._queue, self.decisions, self.buckets, self._agents
            total = 0.0
            for _ in range(len(queue)):
                agent_id, outcome, seconds = queue.popleft()
                if agent_id not in agents:
                    if len(agents) >= MAX_AGENT_SERIES:
                        agent_id = "_other"
                    else:
                        agents.add(agent_id)
                key = (agent_id, outcome)
                decisions[key] = decisions.get(key, 0) + 1
                buckets[bisect.bisect_left(AUDIT_BUCKETS, seconds)] += 1
                total += seconds
            self.audit_sum += total

    def fault(self, component: str) -> None:
        """Count one fault of a component (cold path)."""
        with self._lock:
            self.faults[component] = self.faults.get(component, 0) + 1

    def reload_failed(self) -> None:
        """Count one failed policy reload (cold path)."""
        with self._lock:
            self.reload_failures += 1

    def snapshot(self) -> tuple[dict[tuple[str, str], int], list[int], float, dict[str, int], int]:
        """A consistent copy for a scrape."""
        self._fold()
        with self._lock:
            return dict(self.decisions), list(self.buckets), self.audit_sum, dict(self.faults), self.reload_failures


def read_last_verify(state_path: Path | None) -> dict[str, Any] | None:
    """``{"time", "valid", "entries", "trail_id"}`` of the last ``claw-gov audit verify`` run, or None."""
    if state_path is None:
        return None
    try:
        data = orjson.loads((state_path / LAST_VERIFY_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_run_marker(state_path: Path, name: str, **fields: Any) -> None:
    """Record that something ran (``{"time", **fields}`` in ``<state>/<name>``), atomically."""
    state_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = state_path / f".{name}.{os.getpid()}.tmp"
    tmp.write_bytes(orjson.dumps({"time": time.time(), **fields}, default=str))
    tmp.replace(state_path / name)


def write_last_verify(state_path: Path, valid: bool, entries: int, trail_id: str | None) -> None:
    """Record a verification run (for the metrics and ``claw-gov doctor``)."""
    write_run_marker(state_path, LAST_VERIFY_FILE, valid=valid, entries=entries, trail_id=trail_id)


class GovernorCollector(Collector):
    """Reads a governor's state when Prometheus scrapes."""

    def __init__(self, governor: Governor, sla_seconds: float = ESCALATION_SLA_SECONDS) -> None:
        self.gov = governor
        self.sla = sla_seconds

    def collect(self) -> Iterator[Metric]:
        gov = self.gov
        decisions, buckets, audit_sum, faults, reload_failures = gov.decision_counters.snapshot()
        decided = CounterMetricFamily("claw_decisions", "Decisions made by this process.", labels=["agent", "outcome"])
        for (agent, outcome), n in sorted(decisions.items()):
            decided.add_metric([agent, outcome], n)
        yield decided
        cumulative, acc = [], 0
        for bound, n in zip((*map(_bound, AUDIT_BUCKETS), "+Inf"), buckets, strict=True):
            acc += n
            cumulative.append((bound, acc))
        yield HistogramMetricFamily(
            "claw_audit_append_seconds",
            "Time to write a decision's audit entry.",
            buckets=cumulative,
            sum_value=audit_sum,
        )
        faulted = CounterMetricFamily("claw_plugin_faults", "Faults seen, by component.", labels=["component"])
        for component, n in sorted(faults.items()):
            faulted.add_metric([component], n)
        yield faulted
        yield CounterMetricFamily("claw_policy_reload_failures", "Policy reloads that failed.", value=reload_failures)

        pending = _safe(lambda: gov.escalations.pending(), [])
        now = time.time()
        ages = [now - e.created for e in pending]
        yield GaugeMetricFamily("claw_escalations_pending", "Pending escalations.", value=len(pending))
        yield GaugeMetricFamily(
            "claw_escalation_oldest_pending_age_seconds",
            "Age of the oldest pending escalation.",
            value=max(ages, default=0.0),
        )
        fam = GaugeMetricFamily(
            "claw_escalations_overdue", "Pending escalations older than the SLA.", labels=["sla_seconds"]
        )
        fam.add_metric([f"{self.sla:g}"], sum(1 for a in ages if a > self.sla))
        yield fam

        shared = gov.identities._shared
        known, revoked = shared.known, shared.revoked
        fam = GaugeMetricFamily("claw_trust_score", "Current trust score.", labels=["agent"])
        for agent in sorted(known)[:MAX_AGENT_SERIES]:
            fam.add_metric([agent], _trust(gov, agent))
        yield fam
        yield GaugeMetricFamily("claw_identities", "Identities known.", value=len(known))
        yield GaugeMetricFamily("claw_identities_revoked", "Identities revoked.", value=len(revoked))
        yield GaugeMetricFamily(
            "claw_state_sync_ok", "1 if the last state store sync worked.", value=0 if shared.last_error else 1
        )

        audit = _safe(gov.audit.health, {})
        last_seq = int(audit.get("last_seq") or 0)
        yield GaugeMetricFamily("claw_audit_last_seq", "Newest entry of the local trail.", value=last_seq)
        yield GaugeMetricFamily(
            "claw_audit_unanchored_entries",
            "Entries after the newest signed checkpoint.",
            value=max(0, last_seq - int(audit.get("last_checkpoint_seq") or 0)),
        )
        sink = gov.audit_sink
        if sink is not None:
            lag = sink.lag()
            yield GaugeMetricFamily(
                "claw_audit_unreplicated_entries", "Entries not yet in the fleet audit sink.", value=lag["entries"]
            )
            yield GaugeMetricFamily(
                "claw_audit_replication_lag_seconds", "Age of the oldest entry not yet copied.", value=lag["seconds"]
            )
            yield GaugeMetricFamily(
                "claw_audit_sink_ok", "1 if the last copy to the audit sink worked.", value=0 if sink.last_error else 1
            )
        path = gov.config.audit_path
        if path is not None:
            usage = _safe(lambda: shutil.disk_usage(_existing(path)), None)
            if usage is not None:
                yield GaugeMetricFamily(
                    "claw_audit_disk_free_ratio",
                    "Free fraction of the audit file system.",
                    value=usage.free / usage.total if usage.total else 0.0,
                )
        verified = read_last_verify(gov.config.resolved_state_path)
        if verified is not None:
            yield GaugeMetricFamily(
                "claw_audit_last_verify_timestamp_seconds",
                "When the trail was last verified.",
                value=float(verified.get("time") or 0),
            )
            yield GaugeMetricFamily(
                "claw_audit_last_verify_valid",
                "1 if the last verification found it intact.",
                value=1 if verified.get("valid") else 0,
            )
        health = _safe(gov.health_check, {})
        fam = GaugeMetricFamily("claw_component_ok", "1 per health_check component that is ok.", labels=["component"])
        for name, component in sorted((health.get("components") or {}).items()):
            if isinstance(component, dict):
                fam.add_metric([name], 1 if component.get("status", "ok") == "ok" else 0)
        yield fam


def _trust(gov: Governor, agent_id: str) -> int:
    try:
        return gov.trust_score(agent_id)
    except Exception:
        return 0


def _bound(value: float) -> str:
    return repr(float(value))


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _safe(fn: Callable[[], Any], default: Any) -> Any:
    """A scrape never fails because one source does (a dead database shows in its own gauge)."""
    try:
        return fn()
    except Exception:
        return default


def registry_for(governor: Governor) -> CollectorRegistry:
    """A registry holding only this governor's metrics (several governors never mix)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GovernorCollector(governor))
    return registry


def render(registry: CollectorRegistry) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    return generate_latest(registry).decode()


def metrics_app(governor: Governor) -> Any:
    """An ASGI app serving the governor's metrics (mount it at ``/metrics``; the console does)."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(registry=governor.metrics_registry)
