"""A realistic journal built from numbers, for tests, docs and trying the renderers without a run.

>>> from chaoslab.report import render_markdown
>>> from chaoslab.report.sample import sample_journal
>>> "cascade" in render_markdown(sample_journal(cascade=True))
True

The shape follows the journal format (docs/reports.md, "The journal"): a vector-latency experiment
with a 1 s window, warm-up 0–2 s, baseline 2–12 s, fault 12–20 s and a recovery watch from 20 s.
``api:search`` is the expected impact; with ``cascade=True`` ``api:documents`` degrades too (the
fragile demo api).
"""

from __future__ import annotations

from typing import Any

WINDOW_S = 1.0
BASELINE = (2.0, 12.0)
FAULT = (12.0, 20.0)
SEARCH_BAND_P95_MS = 57.9
DOCUMENTS_BAND_P95_MS = 58.4
ERROR_RATE_MAX = 0.01
MIN_SAMPLES = 5


def _noise(i: int, salt: int) -> float:
    """A deterministic wobble in [0, 1): tests need the same numbers every time."""
    return ((i * 37 + salt * 11) % 17) / 17.0


def _window(index: int, count: int, errors: dict[str, int], p50: float, offered: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": index,
        "start_s": float(index) * WINDOW_S,
        "count": count,
        "ok": count - sum(errors.values()),
        "p50_ms": round(p50, 3),
        "p95_ms": round(p50 * 2.4, 3),
        "p99_ms": round(p50 * 3.6, 3),
        "max_ms": round(p50 * 4.5, 3),
        "mean_ms": round(p50 * 1.2, 3),
    }
    if errors:
        out["errors"] = errors
    if offered is not None:
        out["offered"] = offered
    return out


def _health(windows: list[dict[str, Any]], band_p95_ms: float, n: int) -> str:
    by_index = {w["index"]: w for w in windows}
    chars = []
    for i in range(n):
        w = by_index.get(i)
        if w is None or w["count"] < MIN_SAMPLES:
            chars.append("n")
            continue
        rate = sum(w.get("errors", {}).values()) / w["count"]
        chars.append("d" if w["p95_ms"] > band_p95_ms or rate > ERROR_RATE_MAX else "h")
    return "".join(chars)


def sample_journal(
    *,
    cascade: bool = True,
    recovered: bool = True,
    aborted: bool = False,
    revert_failed: bool = False,
    name: str = "cascade-vector-latency",
) -> dict[str, Any]:
    """A complete journal as the engine writes it; flags pick the outcome."""
    end_s = 28.0 if recovered and not aborted else 35.0
    if aborted:
        end_s = 16.0
    n = int(end_s / WINDOW_S)
    revert_s = 16.0 if aborted else FAULT[1]
    search_bad_until = (revert_s + 2.0) if recovered else end_s
    docs_bad = (13.0, revert_s + 1.0) if cascade else (0.0, 0.0)

    search: list[dict[str, Any]] = []
    documents: list[dict[str, Any]] = []
    probe_vector: list[dict[str, Any]] = []
    probe_api: list[dict[str, Any]] = []
    for i in range(n):
        t = i * WINDOW_S
        # the generator ramps up during warm-up; the first window has too few samples to judge
        search_count = 3 if i == 0 else 13
        docs_count = 4 if i == 0 else 27
        if FAULT[0] <= t < search_bad_until:
            search.append(_window(i, 9, {}, 350.0 + 40 * _noise(i, 1), offered=13))
        else:
            search.append(_window(i, search_count, {}, 3.0 + _noise(i, 1), offered=search_count))
        if docs_bad[0] <= t < docs_bad[1]:
            documents.append(_window(i, 20, {"timeout": 4 + i % 2}, 980.0 + 60 * _noise(i, 2), offered=27))
        else:
            documents.append(_window(i, docs_count, {}, 2.5 + _noise(i, 2), offered=docs_count))
        probe_vector.append(_window(i, 1, {}, 1.0 + _noise(i, 3)))
        probe_api.append(_window(i, 1, {}, 1.2 + _noise(i, 4)))

    search_health = _health(search, SEARCH_BAND_P95_MS, n)
    docs_health = _health(documents, DOCUMENTS_BAND_P95_MS, n)
    phases = [
        {"name": "warmup", "start_s": 0.0, "end_s": BASELINE[0]},
        {"name": "baseline", "start_s": BASELINE[0], "end_s": BASELINE[1]},
        {"name": "fault", "start_s": FAULT[0], "end_s": revert_s},
    ]
    if not aborted:
        phases.append({"name": "recovery", "start_s": FAULT[1], "end_s": end_s})

    cascade_list: list[dict[str, Any]] = []
    if cascade:
        cascade_list.append(
            {
                "signal": "api:documents",
                "service": "api",
                "onset_s": docs_bad[0],
                "peak_s": 17.0,
                "peak": {"p95_ms": 2448.0, "error_rate": 0.2},
                "end_s": docs_bad[1],
            }
        )
    recovery_time_s = (search_bad_until - revert_s) if recovered and not aborted else None
    slo_ok = not cascade
    slos = [
        {
            "signal": "api:documents",
            "objective": "p95 < 500ms",
            "observed": "2448ms" if cascade else "7.1ms",
            "ok": slo_ok,
        },
        {
            "signal": "api:documents",
            "objective": "success ≥ 99%",
            "observed": "81.2%" if cascade else "100%",
            "ok": slo_ok,
        },
    ]
    reasons: list[str] = []
    if cascade:
        reasons.append(f"cascade: api:documents from {docs_bad[0]:.1f}s")
        reasons.append("SLO broken: api:documents p95 < 500ms (observed 2448ms)")
    if not recovered and not aborted:
        reasons.append("not recovered within 15s of revert")
    if aborted:
        reasons.append("aborted: error rate of api:documents above 90% for 3s")
    if revert_failed:
        reasons.append("revert of f0-latency failed")

    verdict, exit_code = "pass", 0
    if reasons:
        verdict, exit_code = "fail", 1
    if aborted:
        verdict, exit_code = "aborted", 3
    if revert_failed:
        verdict, exit_code = "error", 4

    fault = {
        "kind": "latency",
        "target": "api->vector",
        "description": "latency 800ms ± 50ms on api->vector",
        "injected_at_s": 12.0,
        "reverted_at_s": revert_s,
        "revert_ok": not revert_failed,
        "detail": {"toxic": "f0-latency", "proxy": "api-vector"},
        "error": "toxic f0-latency still present after revert" if revert_failed else None,
    }
    events: list[dict[str, Any]] = [
        {"t_s": 0.0, "kind": "phase", "message": "warmup"},
        {"t_s": 2.0, "kind": "phase", "message": "baseline"},
        {"t_s": 12.0, "kind": "phase", "message": "fault"},
        {"t_s": 12.0, "kind": "fault", "message": "applied f0-latency", "data": {"label": "f0-latency"}},
        {
            "t_s": 14.5,
            "kind": "note",
            "message": "alice: search is slow, as expected",
            "data": {"author": "alice", "text": "search is slow, as expected"},
        },
        {
            "t_s": 15.2,
            "kind": "note",
            "message": "bob: documents timing out too <investigating>",
            "data": {"author": "bob", "text": "documents timing out too <investigating>"},
        },
    ]
    if aborted:
        events.append({"t_s": 16.0, "kind": "abort", "message": "error rate of api:documents above 90% for 3s"})
    events.append({"t_s": revert_s, "kind": "fault", "message": "reverted f0-latency", "data": {"label": "f0-latency"}})
    if not aborted:
        events.append({"t_s": FAULT[1], "kind": "phase", "message": "recovery"})
    if recovery_time_s is not None:
        events.append({"t_s": revert_s + recovery_time_s, "kind": "recovered", "message": "healthy for 5s"})

    resources: dict[str, list[dict[str, Any]]] = {}
    for service, base_cpu, rss in (("api", 12.0, 52_000_000), ("vector", 20.0, 88_000_000), ("host", 35.0, 0)):
        samples = []
        for i in range(n):
            t = float(i)
            busy = FAULT[0] <= t < revert_s + 2
            sample: dict[str, Any] = {
                "t_s": t,
                "cpu_percent": round(base_cpu + (25.0 if busy and service != "vector" else 0.0) + 3 * _noise(i, 5), 2),
            }
            if rss:
                sample["rss_bytes"] = rss + (6_000_000 if busy else 0) + i * 10_000
                sample["open_fds"] = 20 + (40 if busy and service == "api" else 0)
                sample["connections"] = 5 + (60 if busy and service == "api" else 0)
            samples.append(sample)
        resources[service] = samples

    generator = [
        {
            "index": i,
            "offered": 40,
            "sent": 40 if i not in (15, 16) else 37,
            "lag_p99_ms": round(1.2 + (14.0 if i in (15, 16) else 0.0), 3),
            "cpu_percent": round(15.0 + (30.0 if i in (15, 16) else 0.0), 1),
            "saturated": i in (15, 16),
        }
        for i in range(n)
    ]
    analysis: dict[str, Any] = {
        "baseline": {
            "api:search": {
                "windows": 10,
                "samples": 130,
                "p50_ms": 3.5,
                "p95_ms": 7.9,
                "p99_ms": 12.0,
                "error_rate": 0.0,
                "throughput": 13.0,
                "stable": True,
                "warning": None,
            },
            "api:documents": {
                "windows": 10,
                "samples": 270,
                "p50_ms": 3.0,
                "p95_ms": 8.4,
                "p99_ms": 11.0,
                "error_rate": 0.0,
                "throughput": 27.0,
                "stable": True,
                "warning": None,
            },
        },
        "bands": {
            "api:search": {
                "p95_max_ms": SEARCH_BAND_P95_MS,
                "error_rate_max": ERROR_RATE_MAX,
                "min_samples": MIN_SAMPLES,
                "source": "baseline",
            },
            "api:documents": {
                "p95_max_ms": DOCUMENTS_BAND_P95_MS,
                "error_rate_max": ERROR_RATE_MAX,
                "min_samples": MIN_SAMPLES,
                "source": "baseline",
            },
        },
        "health": {"api:search": search_health, "api:documents": docs_health},
        "impact": {
            "api:search": {
                "expected": True,
                "time_to_impact_s": 0.0,
                "degraded_windows": search_health.count("d"),
                "peak_p95_ms": 926.4,
                "peak_error_rate": 0.0,
                "first_degraded_s": 12.0,
                "last_degraded_s": search_bad_until - WINDOW_S,
            },
            "api:documents": {
                "expected": False,
                "time_to_impact_s": 1.0 if cascade else None,
                "degraded_windows": docs_health.count("d"),
                "peak_p95_ms": 2448.0 if cascade else 8.9,
                "peak_error_rate": 0.25 if cascade else 0.0,
                "first_degraded_s": docs_bad[0] if cascade else None,
                "last_degraded_s": docs_bad[1] - WINDOW_S if cascade else None,
            },
        },
        "time_to_impact_s": 0.0,
        "recovery_time_s": recovery_time_s,
        "recovery_from_injection_s": None if recovery_time_s is None else revert_s + recovery_time_s - FAULT[0],
        "recovered": recovery_time_s is not None,
        "recovery_budget_s": 15.0,
        "stable_for_s": 5.0,
        "cascade": cascade_list,
        "slos": slos,
        "warnings": ["load generator saturated in 2 windows (15s, 16s)"],
        "verdict": verdict,
        "reasons": reasons,
        "exit_code": exit_code,
    }
    experiment = {
        "name": name,
        "description": "Hypothesis: 800 ms on api→vector slows /search only; documents keep their baseline.",
        "topology": "demo",
        "parameters": {"mode": "fragile", "latency": "800ms"},
        "load": {
            "engine": "builtin",
            "rate": 40.0,
            "mix": [
                {
                    "name": "search",
                    "signal": "api:search",
                    "weight": 1.0,
                    "method": "POST",
                    "url": "${service:api}/search",
                },
                {
                    "name": "documents",
                    "signal": "api:documents",
                    "weight": 2.0,
                    "method": "GET",
                    "url": "${service:api}/documents/{randint:1:500}",
                },
            ],
        },
        "phases": {"warmup": 2.0, "baseline": 10.0, "fault": 8.0},
        "faults": [{"kind": "latency", "target": "api->vector", "latency": 0.8, "jitter": 0.05}],
        "steady_state": {
            "window": WINDOW_S,
            "min_samples": MIN_SAMPLES,
            "slos": [{"signal": "api:documents", "p95": 0.5, "success": 0.99}],
        },
        "expected_impact": ["api:search"],
        "recovery": {"budget": 15.0, "stable_for": 5.0},
        "runbook": "runbooks/cascade-vector-latency.md",
    }
    return {
        "schema_version": 1,
        "chaoslab_version": "0.1.0",
        "run_id": "20261123T071500-ab12cd",
        "experiment": experiment,
        "topology": {"name": "demo", "services": {"api": {}, "vector": {}, "postgres": {}}},
        "parameters": {"mode": "fragile"},
        "quick": True,
        "started_at": "2026-11-23T07:15:00.123Z",
        "ended_at": "2026-11-23T07:15:28.400Z",
        "host": {"hostname": "ci-runner-1", "cpus": 2},
        "window_s": WINDOW_S,
        "duration_s": end_s,
        "phases": phases,
        "faults": [fault],
        "timeline": [
            {"name": "api:search", "kind": "load", "service": "api", "windows": search},
            {"name": "api:documents", "kind": "load", "service": "api", "windows": documents},
        ],
        "probes": [
            {"name": "probe:vector", "kind": "probe", "service": "vector", "windows": probe_vector},
            {"name": "probe:api", "kind": "probe", "service": "api", "windows": probe_api},
        ],
        "resources": resources,
        "events": sorted(events, key=lambda e: e["t_s"]),
        "generator": generator,
        "load_profile": [[float(i), 40.0] for i in range(n)],
        "analysis": analysis,
        "verdict": verdict,
        "exit_code": exit_code,
        "abort_reason": "error rate of api:documents above 90% for 3s" if aborted else None,
        "revert_errors": ["f0-latency: toxic f0-latency still present after revert"] if revert_failed else [],
    }
