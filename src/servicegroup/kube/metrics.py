"""Prometheus metrics of the kube layer, registered once in the default registry.

Names follow `servicegroup_<subsystem>_<what>`; `serve.HealthServer` exposes them at `/metrics`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

API_REQUESTS = Counter(
    "servicegroup_api_requests_total",
    "API server requests by verb, resource and HTTP status code (0 = no answer).",
    ["verb", "resource", "code"],
)
API_RETRIES = Counter(
    "servicegroup_api_retries_total",
    "Read retries after a 429, a 5xx or no answer, by verb and resource.",
    ["verb", "resource"],
)
WATCH_RESTARTS = Counter(
    "servicegroup_watch_restarts_total",
    "Informer watch restarts (ended, broken or 410 Gone) per resource.",
    ["resource"],
)
RELISTS = Counter(
    "servicegroup_informer_relists_total",
    "Informer full relists per resource (initial list included).",
    ["resource"],
)
RECONCILE_TOTAL = Counter(
    "servicegroup_reconcile_total",
    "Reconciles by controller and result (success, requeue, error, terminal).",
    ["controller", "result"],
)
RECONCILE_SECONDS = Histogram(
    "servicegroup_reconcile_seconds",
    "Reconcile duration per controller.",
    ["controller"],
)
WORKQUEUE_DEPTH = Gauge("servicegroup_workqueue_depth", "Keys waiting in a work queue.", ["name"])
WORKQUEUE_ADDS = Counter("servicegroup_workqueue_adds_total", "Keys added to a work queue.", ["name"])
WORKQUEUE_RETRIES = Counter(
    "servicegroup_workqueue_retries_total", "Rate-limited re-adds to a work queue.", ["name"]
)
LEADER = Gauge("servicegroup_leader", "1 while this process holds the lease.", ["lease"])
EVENTS_DROPPED = Counter(
    "servicegroup_events_dropped_total", "Events the recorder could not post.", ["component"]
)
