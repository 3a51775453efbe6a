"""Size and speed of the results report on the demo's published results, in headless
Chromium. Writes benchmarks/results/report.json.

    python -m benchmarks.report_bench [--results DIR] [--experiment SLUG] [--repeat 5] [--vega]

Targets (from the results-experience issue): the page at most 3 MB, first render under
1 s, a period switch under 200 ms. Measured in Debian's /usr/bin/chromium (or
$JETSTREAM_CHROMIUM) driven by playwright, never a downloaded browser:

- first render: from the navigation's time origin until the frame after the page script
  drew the scorecard, forest plot and windows over time is painted (the page stamps
  `body[data-painted]`); a fresh page per repeat;
- period switch: choosing each other period in the period filter (a `change` event, as a
  user does) until the redraw is done and the next frame painted, for every period, per
  repeat (`switch_script_ms`: the page's change handler alone, without layout and paint);
- the "all branch pairs" toggle, the same way.

`--results` defaults to benchmarks/data/report-demo/results, made once by
`python -m jetstream.demo` (10,000 clients, a few minutes) and reused. `--vega` also
measures a Vega-Lite rendering of the same views (forest plot and windows over time) with
vega, vega-lite and vega-embed inlined from their npm packages (fetched once with
`npm pack` into benchmarks/data/vega/): the figures behind the choice of hand-written SVG
recorded in docs/report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "report.json"
DATA_DIR = ROOT / "data"
DEMO_DIR = DATA_DIR / "report-demo"
VEGA_DIR = DATA_DIR / "vega"
VEGA_PACKAGES = {"vega": "6.4.0", "vega-lite": "6.4.3", "vega-embed": "7.3.0"}
VEGA_FILES = {
    "vega": "package/build/vega.min.js",
    "vega-lite": "package/build/vega-lite.min.js",
    "vega-embed": "package/build/vega-embed.min.js",
}
TARGETS = {"max_bytes": 3_000_000, "first_render_ms": 1000.0, "period_switch_ms": 200.0}

# Runs inside the page: pick `value` in the select `selector` (or flip the checkbox) and
# resolve with the milliseconds until the page's handler ran and the next frame is painted.
_SWITCH_JS = """
async ([selector, value]) => {
  const node = document.querySelector(selector);
  const t0 = performance.now();
  if (node.type === "checkbox") node.checked = !node.checked; else node.value = value;
  node.dispatchEvent(new Event("change"));
  if (window.__vegaDone) await window.__vegaDone();
  const script = performance.now() - t0;
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  return [performance.now() - t0, script];
}
"""
# The page stamps `data-painted` (ms since the navigation's time origin) once the frame
# after its first render is painted.
_FIRST_RENDER_SELECTOR = "body[data-painted]"
# The page's own timings of its first render's steps (performance.measure "report:<step>").
_STEPS_JS = """() => performance.getEntriesByType("measure")
  .filter(m => m.name.startsWith("report:")).map(m => [m.name.slice(7), m.duration])"""


def ensure_results(results: Path | None) -> Path:
    """The published results to render: `results`, or the cached demo output (made once)."""
    if results is not None:
        if not (results / "statistics").is_dir():
            raise SystemExit(f"{results}: no statistics/ directory of published results")
        return results
    cached = DEMO_DIR / "results"
    if not (cached / "statistics").is_dir():
        print(f"generating the demo results into {DEMO_DIR} (a few minutes)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "jetstream.demo", "--out", str(DEMO_DIR)],
            check=True,
            cwd=ROOT.parent,
        )
    return cached


def chromium() -> str:
    path = os.environ.get("JETSTREAM_CHROMIUM") or "/usr/bin/chromium"
    if not Path(path).is_file():
        raise SystemExit(
            f"no Chromium at {path} (apt-get install chromium, or set JETSTREAM_CHROMIUM)"
        )
    return path


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
        "runs": len(values),
    }


def measure_page(page_path: Path, switches: list[tuple[str, str]], repeat: int) -> dict[str, Any]:
    """First render and every switch in `switches` ((selector, value) in order), `repeat`
    times, each repeat on a fresh page."""
    from playwright.sync_api import sync_playwright

    first: list[float] = []
    steps: dict[str, list[float]] = {}
    script_ms: list[float] = []  # of every switch: the page's handler alone
    by_switch: dict[str, list[float]] = {}
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        version = browser.version
        try:
            for _ in range(repeat):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                page.goto(page_path.as_uri(), wait_until="load")
                page.wait_for_selector(_FIRST_RENDER_SELECTOR, state="attached")
                first.append(float(page.evaluate("document.body.dataset.painted")))
                for name, ms in page.evaluate(_STEPS_JS):
                    steps.setdefault(name, []).append(float(ms))
                for selector, value in switches:
                    ms, script = page.evaluate(_SWITCH_JS, [selector, value])
                    by_switch.setdefault(f"{selector}={value}", []).append(float(ms))
                    script_ms.append(float(script))
                context.close()
        finally:
            browser.close()
    periods = [v for k, vs in by_switch.items() if k.startswith("#f-period") for v in vs]
    others = {k: summary(vs) for k, vs in by_switch.items() if not k.startswith("#f-period")}
    return {
        "chromium": version,
        "first_render_ms": summary(first),
        "first_render_steps_ms": {k: summary(v) for k, v in steps.items()},
        "period_switch_ms": summary(periods) if periods else None,
        "period_switch_by_period_ms": {
            k.split("=", 1)[1]: summary(vs)
            for k, vs in by_switch.items()
            if k.startswith("#f-period")
        },
        "other_switches_ms": others,
        "switch_script_ms": summary(script_ms) if script_ms else None,
        "page_errors": problems[:5],
    }


def switches_for(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Every period of the first experiment but the default one, back to it, then the
    all-pairs toggle on and off."""
    exp = data["experiments"][0]
    order = [p for p in data["period_order"] if p in exp["periods"]]
    default = "overall" if "overall" in order else order[0]
    out = [("#f-period", p) for p in order if p != default] + [("#f-period", default)]
    return out + [("#f-pairs", "on"), ("#f-pairs", "off")]


def bench_svg(
    results: Path, out_dir: Path, repeat: int, slug: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    from jetstream.artifacts import open_store
    from jetstream.report import load_results, render_html, report_data

    started = time.monotonic()
    experiments = load_results(open_store(str(results)), slug)
    data = report_data(experiments, source=str(results))
    page = render_html(data)
    seconds = time.monotonic() - started
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    rows = sum(len(r) for e in experiments for r in e.statistics.values())
    published = sum(f.stat().st_size for f in (results / "statistics").glob("*.json"))
    figures = {
        "charting": "hand-written SVG (jetstream/report_assets/report.js)",
        "bytes": path.stat().st_size,
        "embedded_data_bytes": len(json.dumps(data, separators=(",", ":")).encode()),
        "published_rows": rows,
        "published_statistics_bytes": published,
        "python_render_seconds": round(seconds, 2),
        **measure_page(path, switches_for(data), repeat),
    }
    return figures, data


# ----------------------------------------------------------------------------- vega


def vega_scripts() -> dict[str, str]:
    """vega, vega-lite and vega-embed's minified builds from their npm packages (npm pack,
    cached under benchmarks/data/vega/)."""
    VEGA_DIR.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, version in VEGA_PACKAGES.items():
        tgz = VEGA_DIR / f"{name}-{version}.tgz"
        if not tgz.exists():
            subprocess.run(["npm", "pack", f"{name}@{version}"], cwd=VEGA_DIR, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        with tarfile.open(tgz) as tar:
            member = tar.extractfile(VEGA_FILES[name])
            if member is None:
                raise SystemExit(f"{tgz}: no {VEGA_FILES[name]}")
            out[name] = member.read().decode("utf-8")
    return out


_VEGA_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<script>__VEGA__</script><script>__VEGALITE__</script><script>__EMBED__</script></head>
<body><select id="f-period">__OPTIONS__</select><input type="checkbox" id="f-pairs">
<div id="forest"></div><div id="timeline"></div>
<script type="application/json" id="report-data">__DATA__</script>
<script>
(function () {
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var exp = DATA.experiments[0], pending = [];
  window.__vegaDone = function () { return Promise.all(pending); };
  function rowsFor(period, allPairs) {
    var p = exp.periods[period], cell = (p.cells.enrollments || {}).all;
    if (!cell) return { p: p, rows: [] };
    return { p: p, rows: cell.comparisons.filter(function (c) {
      return allPairs || c.to === exp.reference; }) };
  }
  function draw() {
    var period = document.getElementById("f-period").value;
    var allPairs = document.getElementById("f-pairs").checked;
    var sel = rowsFor(period, allPairs), last = sel.p.windows.length - 1, forest = [], lines = [];
    sel.rows.forEach(function (c) {
      var t = c.rel[last], pair = c.b + " vs " + c.to;
      if (t && t[0] !== null) forest.push({ row: c.m + " · " + c.s + " · " + pair, pair: pair,
        point: t[0], lower: t[1], upper: t[2] });
      c.rel.forEach(function (u, k) {
        if (u && u[0] !== null) lines.push({ chart: c.m + " · " + c.s, pair: pair,
          window: sel.p.windows[k], point: u[0], lower: u[1], upper: u[2] });
      });
    });
    var enc = { color: { field: "pair", type: "nominal" } };
    var forestSpec = { $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      data: { values: forest }, width: 600,
      encoding: { y: { field: "row", type: "nominal", sort: null, title: null }, color: enc.color },
      layer: [{ mark: "rule", encoding: { x: { field: "lower", type: "quantitative", axis: { format: "%" } }, x2: { field: "upper" } } },
              { mark: { type: "point", filled: true }, encoding: { x: { field: "point", type: "quantitative" } } }] };
    pending = [vegaEmbed("#forest", forestSpec, { actions: false, renderer: "svg" })];
    var timeline = document.getElementById("timeline");
    timeline.textContent = "";
    if (sel.p.windows.length > 1) {
      var timeSpec = { $schema: "https://vega.github.io/schema/vega-lite/v6.json",
        data: { values: lines }, columns: 3,
        facet: { field: "chart", type: "nominal", title: null }, resolve: { scale: { y: "independent" } },
        spec: { width: 300, height: 120, encoding: { x: { field: "window", type: "quantitative" }, color: enc.color },
          layer: [{ mark: { type: "area", opacity: 0.16 }, encoding: { y: { field: "lower", type: "quantitative", axis: { format: "%" } }, y2: { field: "upper" } } },
                  { mark: "line", encoding: { y: { field: "point", type: "quantitative" } } }] } };
      var div = document.createElement("div");
      timeline.appendChild(div);
      pending.push(vegaEmbed(div, timeSpec, { actions: false, renderer: "svg" }));
    }
    return Promise.all(pending);
  }
  document.getElementById("f-period").addEventListener("change", draw);
  document.getElementById("f-pairs").addEventListener("change", draw);
  document.getElementById("f-period").value = "overall";
  draw().then(function () {
    requestAnimationFrame(function () { setTimeout(function () {
      document.body.setAttribute("data-painted", String(performance.now()));
    }, 0); });
  });
})();
</script></body></html>"""


def bench_vega(data: dict[str, Any], out_dir: Path, repeat: int) -> dict[str, Any]:
    """The same forest plot and windows over time, drawn by Vega-Lite (SVG renderer)."""
    from jetstream.report import embed_json

    try:
        scripts = vega_scripts()
    except (OSError, subprocess.CalledProcessError) as exc:
        return {"skipped": f"vega packages unavailable: {exc}"}
    exp = data["experiments"][0]
    options = "".join(f'<option value="{p}">{p}</option>' for p in exp["periods"])
    # Vega's scripts may contain "</" in strings; they are inlined as the report would
    # inline them, with the closing-tag sequence escaped.
    js = {k: v.replace("</script", "<\\/script") for k, v in scripts.items()}
    page = (
        _VEGA_PAGE.replace("__OPTIONS__", options)
        .replace("__DATA__", embed_json(data))
        .replace("__VEGA__", js["vega"])
        .replace("__VEGALITE__", js["vega-lite"])
        .replace("__EMBED__", js["vega-embed"])
    )
    path = out_dir / "vega.html"
    path.write_text(page, encoding="utf-8")
    return {
        "charting": "Vega-Lite " + VEGA_PACKAGES["vega-lite"] + " via vega-embed, SVG renderer",
        "views": "forest plot and windows over time only (no scorecard table, no messages)",
        "bytes": path.stat().st_size,
        "library_bytes": sum(len(v.encode()) for v in scripts.values()),
        **measure_page(path, switches_for(data), repeat),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_bench",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--results", type=Path, default=None,
                        help="published results directory (default: the cached demo's)")  # fmt: skip
    parser.add_argument("--experiment", default=None, help="only this experiment's results")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--vega", action="store_true", help="also measure a Vega-Lite page")
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args(argv)
    results = ensure_results(args.results)
    shown = Path(results).resolve()
    if shown.is_relative_to(ROOT.parent):  # a path in the checkout, not of this machine
        shown = shown.relative_to(ROOT.parent)
    doc: dict[str, Any] = {"machine": machine(), "results": str(shown), "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        svg, data = bench_svg(results, Path(tmp), args.repeat, args.experiment)
        doc["report"] = svg
        if args.vega:
            doc["vega_lite"] = bench_vega(data, Path(tmp), args.repeat)
    switch = svg["period_switch_ms"] or {"max": 0.0}
    doc["meets_targets"] = {
        "bytes": svg["bytes"] <= TARGETS["max_bytes"],
        "first_render": svg["first_render_ms"]["max"] < TARGETS["first_render_ms"],
        "period_switch": switch["max"] < TARGETS["period_switch_ms"],
    }
    text = json.dumps(doc, indent=1)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text + "\n")
        print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
