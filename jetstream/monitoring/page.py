"""The monitoring page: one self-contained HTML document (inline CSS, JS and SVG, no
network), with the enrollment and search charts of every experiment, one line per branch,
and the health checks. It reloads itself every `refresh_seconds`. Pure: returns a string.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from jetstream.monitoring.schedule import utc

ENROLLMENT_CHARTS = (
    ("experiment_enrollment_overall", "Enrollments per 5 minutes"),
    ("experiment_unenrollment_overall", "Unenrollments per 5 minutes"),
    ("experiment_enrollment_other_events_overall", "Other enrollment events per 5 minutes"),
    ("experiment_enrollment_cumulative_population_estimate", "Cumulative population estimate"),
    ("experiment_enrollment_daily_active_population", "Daily active population"),
)
SEARCH_CHARTS = (
    ("experiment_cumulative_search_count", "Cumulative searches"),
    ("experiment_cumulative_search_with_ads_count", "Cumulative searches with ads"),
    ("experiment_cumulative_ad_clicks", "Cumulative ad clicks"),
)

_SCRIPT = r"""
(function () {
  const DATA = JSON.parse(document.getElementById("monitoring-data").textContent);
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function chart(host, rows) {
    const W = 460, H = 200, L = 56, R = 10, T = 10, B = 28;
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img"}, host);
    const series = {};
    for (const r of rows) (series[r.branch] = series[r.branch] || []).push(r);
    const times = rows.map(r => Date.parse(r.time));
    const values = rows.map(r => r.value);
    if (!rows.length) {
      el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty"}, svg)
        .textContent = "no data yet";
      return;
    }
    const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
    const v0 = Math.min(0, ...values), v1 = Math.max(1, ...values);
    const x = t => L + (t - t0) / (t1 - t0) * (W - L - R);
    const y = v => H - B - (v - v0) / (v1 - v0) * (H - T - B);
    el("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis"}, svg);
    el("line", {x1: L, y1: T, x2: L, y2: H - B, class: "axis"}, svg);
    for (const v of [v0, (v0 + v1) / 2, v1]) {
      el("text", {x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "tick"}, svg)
        .textContent = Math.round(v).toLocaleString();
    }
    for (const t of [t0, t1]) {
      el("text", {x: x(t), y: H - 8, "text-anchor": t === t0 ? "start" : "end", class: "tick"},
         svg).textContent = new Date(t).toISOString().slice(5, 16).replace("T", " ");
    }
    Object.keys(series).sort().forEach((branch, i) => {
      const pts = series[branch].map(r => `${x(Date.parse(r.time)).toFixed(1)},${y(r.value).toFixed(1)}`);
      el("polyline", {points: pts.join(" "), fill: "none", stroke: COLORS[i % COLORS.length],
                      "stroke-width": 1.5, "data-branch": branch}, svg);
      const last = series[branch][series[branch].length - 1];
      el("text", {x: L + 6, y: T + 10 + 12 * i, "text-anchor": "start", fill: COLORS[i % COLORS.length],
                  class: "legend"}, svg).textContent = `${branch}: ${last.value.toLocaleString()}`;
    });
  }
  document.querySelectorAll(".chart").forEach(host => {
    const rows = (DATA.data[host.dataset.experiment] || {})[host.dataset.dataset] || [];
    chart(host, rows);
  });
  if (DATA.refresh_seconds > 0) setTimeout(() => location.reload(), DATA.refresh_seconds * 1000);
})();
"""

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { margin-top: 1.6em; } h3 { font-size: 1em; margin: .6em 0 .2em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.chart { border: 1px solid #ddd; padding: .4em; }
.axis { stroke: #888; } .tick, .legend { font-size: 10px; } .tick { fill: #555; }
.empty { fill: #999; }
.ok { color: #1a7f37; } .alarm { color: #cf222e; font-weight: bold; }
table.health td { padding: 0 .8em 0 0; }
"""


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _health_html(doc: Mapping[str, Any] | None) -> str:
    if not doc:
        return "<p>No health checks yet.</p>"
    srm = doc.get("srm", {})
    silent = doc.get("no_recent_enrollments", {})
    cls = "ok" if doc.get("ok") else "alarm"
    verdict = "healthy" if doc.get("ok") else "needs attention"
    srm_text = (
        f"sample-ratio mismatch (p = {float(srm.get('p_value', 1.0)):.3g})"
        if srm.get("mismatch")
        else f"no sample-ratio mismatch (anytime p = {float(srm.get('p_value', 1.0)):.3g})"
    )
    clients = ", ".join(
        f"{_esc(b)}: {int(n):,}" for b, n in srm.get("enrolled_clients", {}).items()
    )
    silence_text = (
        "no enrollments in the last hour while enrollment is open"
        if silent.get("flag")
        else f"{int(silent.get('enrollments', 0)):,} enrollments in the last hour"
        + ("" if silent.get("enrollment_open") else " (enrollment closed or paused)")
    )
    return (
        f'<table class="health"><tr><td>Status</td><td class="{cls}" data-health="{cls}">'
        f"{_esc(verdict)}</td></tr>"
        f"<tr><td>SRM</td><td>{_esc(srm_text)}</td></tr>"
        f"<tr><td>Enrolled clients</td><td>{clients}</td></tr>"
        f"<tr><td>Enrollment</td><td>{_esc(silence_text)}</td></tr></table>"
    )


def _charts(slug: str, charts: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="charts">'
        + "".join(
            f'<div><h3>{_esc(title)}</h3><div class="chart" data-experiment="{_esc(slug)}" '
            f'data-dataset="{_esc(name)}"></div></div>'
            for name, title in charts
        )
        + "</div>"
    )


def render_page(
    at: dt.datetime,
    data: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    health: Mapping[str, Mapping[str, Any]],
    refresh_seconds: int = 60,
) -> str:
    """`data`: slug -> dataset name -> rows {time, branch, value}; `health`: slug -> the
    health document."""
    stamp = utc(at).strftime("%Y-%m-%d %H:%M UTC")
    payload = {
        "at": stamp,
        "refresh_seconds": refresh_seconds,
        "data": {
            slug: {
                name: [
                    {"time": r["time"], "branch": r["branch"], "value": r["value"]} for r in rows
                ]
                for name, rows in datasets.items()
            }
            for slug, datasets in data.items()
        },
    }
    # `</` cannot end the script element early once escaped.
    blob = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    sections = []
    for slug in sorted(data):
        sections.append(
            f'<section id="{_esc(slug)}"><h2>{_esc(slug)}</h2>'
            f"{_health_html(health.get(slug))}"
            f"<h3>Enrollment</h3>{_charts(slug, ENROLLMENT_CHARTS)}"
            f"<h3>Search</h3>{_charts(slug, SEARCH_CHARTS)}</section>"
        )
    body = "".join(sections) or "<p>No live experiments.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Live experiment monitoring</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Live experiment monitoring</h1><p>Data as of <time>{_esc(stamp)}</time>; "
        f"this page reloads every {int(refresh_seconds)} s.</p>{body}"
        f'<script type="application/json" id="monitoring-data">{blob}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
