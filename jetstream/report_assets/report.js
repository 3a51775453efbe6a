(function () {
  "use strict";

  var parseStart = performance.now();
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  if (performance.measure) performance.measure("report:parse", { start: parseStart, end: performance.now() });
  var SVGNS = "http://www.w3.org/2000/svg";
  // Okabe-Ito: one colour per treatment (compared with the reference branch) ...
  var TREATMENT_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                          "#7F3C8D", "#8C564B"];
  // ... and darker, dashed ones for the other pairs behind the "all pairs" toggle.
  var PAIR_COLORS = ["#3B3B3B", "#7A5195", "#A05195", "#2F4B7C", "#665191", "#4D4D4D"];
  var SRM_ALPHA = 0.001;

  var state = { experiment: null, period: null, window: null, basis: null, segment: null,
                allPairs: false };

  // ---------------------------------------------------------------- helpers
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVGNS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (var k in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
      var v = attrs[k];
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
  }
  function append(node, children) {
    if (children === null || children === undefined) return;
    if (!Array.isArray(children)) children = [children];
    for (var i = 0; i < children.length; i++) {
      var c = children[i];
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
  }
  function clear(node) { node.textContent = ""; }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function has(obj, k) { return Object.prototype.hasOwnProperty.call(obj, k); }

  // 12345 -> "12,345" (toLocaleString builds a formatter per call: too slow per cell)
  function grouped(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  // Numbers as the scorecard shows them (tests format the JSON the same way).
  function pct(v) {
    if (!isNum(v)) return "\u2014";
    var s = (v * 100).toFixed(2);
    if (s === "-0.00") s = "0.00";
    return (v > 0 && s !== "0.00" ? "+" : "") + s + "%";
  }
  function num(v) {
    if (!isNum(v)) return "\u2014";
    var a = Math.abs(v);
    var s;
    if (a === 0) s = "0";
    else if (a >= 1e5) s = grouped(Math.round(v));
    else if (a >= 1e-3) s = String(Number(v.toPrecision(4)));
    else s = v.toExponential(2);
    return v > 0 ? "+" + s : s;
  }
  function plain(v) { return isNum(v) ? num(v).replace(/^\+/, "") : "\u2014"; }
  function count(v) { return isNum(v) ? grouped(Math.round(v)) : "\u2014"; }
  function interval(t, f) {
    return t && isNum(t[1]) && isNum(t[2]) ? "[" + f(t[1]) + ", " + f(t[2]) + "]" : "";
  }
  function pval(v) {
    if (!isNum(v)) return "\u2014";
    return v < 1e-4 ? "<0.0001" : v.toFixed(4);
  }

  // ---------------------------------------------------------------- data access
  function experiment() {
    for (var i = 0; i < DATA.experiments.length; i++) {
      if (DATA.experiments[i].slug === state.experiment) return DATA.experiments[i];
    }
    return DATA.experiments[0];
  }
  function period() { return experiment().periods[state.period] || { windows: [], cells: {} }; }
  function cell() {
    var byBasis = period().cells[state.basis] || {};
    return byBasis[state.segment] || { counts: {}, srm: [], values: [], comparisons: [] };
  }
  function windowPos() { return Math.max(0, period().windows.indexOf(state.window)); }
  function metricIndex() {
    var out = {};
    experiment().metrics.forEach(function (m, i) { out[m.slug] = i; });
    return out;
  }
  function treatments() {
    var exp = experiment();
    return exp.branches.filter(function (b) { return b !== exp.reference; });
  }

  // One colour and style per branch pair: the reference pairs take their treatment's colour.
  function pairStyle(branch, to) {
    var exp = experiment();
    var t = treatments();
    if (to === exp.reference && t.indexOf(branch) >= 0) {
      return { color: TREATMENT_COLORS[t.indexOf(branch) % TREATMENT_COLORS.length], dash: null };
    }
    var others = [];  // unordered pairs of branches that are not a treatment and the reference
    exp.branches.forEach(function (a, i) {
      exp.branches.forEach(function (b, j) {
        if (j > i && !(a === exp.reference && t.indexOf(b) >= 0)) others.push(b + "\u0000" + a);
      });
    });
    var i = Math.max(0, others.indexOf(branch + "\u0000" + to), others.indexOf(to + "\u0000" + branch));
    return { color: PAIR_COLORS[i % PAIR_COLORS.length], dash: "5 3" };
  }
  function pairLabel(c) { return c.b + " vs " + c.to; }

  // The comparisons the views show, in scorecard order: primary metrics first, then the
  // configuration order, statistics alphabetically, treatments in branch order.
  function shownComparisons() {
    var exp = experiment();
    var order = metricIndex();
    var branches = exp.branches;
    // (the page data holds one direction of each pair of branches: jetstream/report/aggregate.py)
    return cell().comparisons.filter(function (c) {
      return has(order, c.m) && (state.allPairs || c.to === exp.reference);
    }).sort(function (a, b) {
      return (order[a.m] - order[b.m]) ||
        (a.s < b.s ? -1 : a.s > b.s ? 1 : 0) ||
        ((a.to === exp.reference ? 0 : 1) - (b.to === exp.reference ? 0 : 1)) ||
        (branches.indexOf(a.b) - branches.indexOf(b.b)) ||
        (branches.indexOf(a.to) - branches.indexOf(b.to));
    });
  }
  function branchValue(m, s, b, i) {
    var vs = cell().values;
    for (var k = 0; k < vs.length; k++) {
      if (vs[k].m === m && vs[k].s === s && vs[k].b === b) return vs[k].v[i];
    }
    return null;
  }

  // Significant when the relative uplift's interval (else the difference's) excludes 0;
  // good or bad by the metric's bigger_is_better.
  function verdict(c, i, info) {
    var t = c.rel[i] && isNum(c.rel[i][1]) ? c.rel[i] : c.abs[i];
    if (!t || !isNum(t[0]) || !isNum(t[1]) || !isNum(t[2])) return { kind: "none", text: "no interval" };
    if (t[1] <= 0 && t[2] >= 0) return { kind: "neutral", text: "not significant" };
    var up = t[0] > 0;
    var good = up === (info.bigger_is_better !== false);
    // the interval is not adjusted for multiple comparisons; say so when the adjusted
    // p-value disagrees
    var q = c.q[i], weak = isNum(q) && q >= 1 - (c.ci || 0.95);
    return { kind: good ? "good" : "bad", up: up, weak: weak,
             text: (up ? "\u25B2 " : "\u25BC ") + (good ? "better" : "worse") + (weak ? "*" : "") };
  }

  // ---------------------------------------------------------------- filters
  function fillSelect(id, values, labels, current) {
    var select = document.getElementById(id);
    clear(select);
    values.forEach(function (v, i) {
      select.appendChild(el("option", { value: String(v), text: labels ? labels[i] : String(v) }));
    });
    var strings = values.map(String);
    var pos = strings.indexOf(String(current));
    var value = pos >= 0 ? values[pos] : (values.length ? values[0] : null);
    select.value = value === null ? "" : String(value);
    select.disabled = values.length <= 1;
    return value;
  }
  function sortedPeriods(exp) {
    var order = DATA.period_order || [];
    return Object.keys(exp.periods).sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
  }
  function hasComparisons(p) {
    for (var basis in p.cells) {
      for (var seg in p.cells[basis]) if (p.cells[basis][seg].comparisons.length) return true;
    }
    return false;
  }
  function defaultPeriod(exp) {
    var periods = sortedPeriods(exp);
    var preferred = ["overall", "weekly", "days28", "daily"];
    for (var i = 0; i < preferred.length; i++) {
      var p = exp.periods[preferred[i]];
      if (p && hasComparisons(p)) return preferred[i];
    }
    return periods[0] || null;
  }
  function refreshFilters() {
    var exps = DATA.experiments.map(function (e) { return e.slug; });
    var names = DATA.experiments.map(function (e) { return e.name || e.slug; });
    state.experiment = fillSelect("f-experiment", exps, names, state.experiment);
    var exp = experiment();
    var periods = sortedPeriods(exp);
    if (periods.indexOf(state.period) < 0) state.period = defaultPeriod(exp);
    state.period = fillSelect("f-period", periods, periods.map(function (p) {
      var n = exp.periods[p].windows.length;
      return p + (n > 1 ? " (" + n + " windows)" : "");
    }), state.period);
    var p = period();
    var wins = p.windows;
    if (wins.indexOf(state.window) < 0) state.window = wins.length ? wins[wins.length - 1] : null;
    state.window = fillSelect("f-window", wins, wins.map(function (w, i) {
      return "window " + w + (i === wins.length - 1 ? " (latest)" : "");
    }), state.window);
    var bases = Object.keys(p.cells).sort();
    state.basis = fillSelect("f-basis", bases, null, state.basis || "enrollments");
    var segs = Object.keys(p.cells[state.basis] || {}).sort(function (a, b) {
      return a === "all" ? -1 : b === "all" ? 1 : a < b ? -1 : a > b ? 1 : 0;
    });
    state.segment = fillSelect("f-segment", segs, null, state.segment || "all");
    document.getElementById("f-pairs").checked = state.allPairs;
  }

  // ---------------------------------------------------------------- status
  function srmVerdict() {
    var test = cell().srm[windowPos()];
    if (!test || !isNum(test.p)) return { kind: "none", text: "no sample-ratio test for this selection" };
    var shares = Object.keys(test.observed).map(function (b) {
      return b + " " + (test.observed[b] * 100).toFixed(1) + "%" +
        (isNum(test.expected[b]) ? " (expected " + (test.expected[b] * 100).toFixed(1) + "%)" : "");
    }).join(", ");
    var bad = test.p < SRM_ALPHA;
    var note = state.basis === "exposures" ? " Exposure-based populations may be legitimately imbalanced." : "";
    return { kind: bad ? "bad" : "ok", p: test.p,
             text: (bad ? "Sample ratio MISMATCH" : "No sample ratio mismatch") +
               " (p = " + pval(test.p) + "): " + shares + "." + note };
  }
  function renderStatus() {
    var box = document.getElementById("status");
    clear(box);
    var exp = experiment();
    var srm = srmVerdict();
    box.appendChild(el("p", { id: "srm", "class": "status-line", "data-verdict": srm.kind }, [
      el("span", { "class": "badge " + (srm.kind === "bad" ? "bad" : srm.kind === "ok" ? "ok" : "warn"),
                   text: srm.kind === "bad" ? "SRM" : srm.kind === "ok" ? "SRM ok" : "SRM n/a" }),
      " " + state.period + (period().windows.length > 1 ? ", window " + state.window : "") +
        ", " + state.basis + ", segment " + state.segment + ": " + srm.text
    ]));
    var errs = exp.messages.filter(function (k) { return k.level === "ERROR"; });
    var line = el("p", { id: "messages-summary", "class": "status-line" });
    var nErr = exp.message_levels.ERROR || 0;
    var nAll = 0;
    for (var lvl in exp.message_levels) nAll += exp.message_levels[lvl];
    line.appendChild(el("span", { "class": "badge " + (nErr ? "bad" : "ok"), text: grouped(nErr) + " errors" }));
    line.appendChild(document.createTextNode(" " + grouped(nAll - nErr) + " warnings in " +
      (exp.messages.length - errs.length) + " kinds. "));
    line.appendChild(el("a", { href: "#messages-panel", text: "Details below" }));
    // errors and experiment-wide warnings (data quality) are named right here
    exp.messages.filter(function (k) { return k.level === "ERROR" || k.experiment_wide; }).slice(0, 4).forEach(function (k) {
      var text = k.count === 1 && k.examples.length ? k.examples[0].message : k.count + "\u00d7 " + k.pattern;
      line.appendChild(el("span", { "class": "status-" + (k.level === "ERROR" ? "error" : "warning"),
                                    text: " \u2022 " + k.level.toLowerCase() + ": " + text }));
    });
    box.appendChild(line);
  }

  // ---------------------------------------------------------------- scorecard
  function swatch(c) {
    var st = pairStyle(c.b, c.to);
    return el("i", { "class": "swatch" + (st.dash ? " dashed" : ""), style: "background:" + st.color });
  }
  function triple(t, f, cls) {
    if (!t) return el("span", { "class": cls + " missing", text: "\u2014" });
    return el("span", { "class": cls, "data-point": t[0], "data-lower": t[1], "data-upper": t[2] }, [
      el("b", { text: f(t[0]) }), " ", el("small", { text: interval(t, f) })
    ]);
  }
  function renderScorecard(rows) {
    var exp = experiment();
    var table = document.getElementById("scorecard");
    var thead = table.tHead, tbody = table.tBodies[0];
    clear(thead); clear(tbody);
    thead.appendChild(el("tr", null, [["Metric"], ["Statistic"], ["Comparison"], ["Relative uplift (95% CI)"],
      ["Difference (95% CI)"], ["Significance"], ["p (adjusted)"],
      ["Reference", "The reference branch's own estimate"],
      ["Clients", "Clients in the branch / in the reference branch, in this window"]
    ].map(function (h) { return el("th", { text: h[0], title: h[1] || null }); })));
    var i = windowPos(), infoOf = metricIndex();
    var group = null, lastMetric = null, counts = cell().counts;
    rows.forEach(function (c) {
      var info = exp.metrics[infoOf[c.m]];
      var g = info.primary ? "Primary metrics" + (info.outcome ? " (" + info.outcome + ")" : "") : "Other metrics";
      if (g !== group && exp.metrics.some(function (m) { return m.primary; })) {
        tbody.appendChild(el("tr", { "class": "group-row" }, el("td", { colspan: 9, text: g })));
      }
      group = g;
      var v = verdict(c, i, info);
      var ref = branchValue(c.m, c.s, c.to, i);
      var nb = counts[c.b] ? counts[c.b][i] : null, nr = counts[c.to] ? counts[c.to][i] : null;
      var first = c.m !== lastMetric;
      lastMetric = c.m;
      tbody.appendChild(el("tr", { "class": "score-row sig-" + v.kind + (first ? " first" : ""),
                                   "data-metric": c.m, "data-statistic": c.s, "data-branch": c.b,
                                   "data-to": c.to }, [
        el("td", { "class": "metric", title: info.description || null },
           first ? [el("b", { text: info.name }), info.name !== c.m ? el("small", { text: c.m }) : null] : null),
        el("td", { "class": "statistic", text: c.s }),
        el("td", { "class": "pair" }, [swatch(c), pairLabel(c)]),
        el("td", { "class": "num" }, triple(c.rel[i], pct, "rel")),
        el("td", { "class": "num" }, triple(c.abs[i], num, "abs")),
        el("td", { "class": "sig" }, el("span", { "class": "mark " + v.kind + (v.weak ? " weak" : ""), text: v.text,
          title: v.weak ? "The interval excludes 0 but the p-value adjusted for multiple comparisons is " + pval(c.q[i]) : null })),
        el("td", { "class": "num p", "data-p": isNum(c.p[i]) ? c.p[i] : null, "data-q": isNum(c.q[i]) ? c.q[i] : null },
           [pval(c.p[i]), isNum(c.q[i]) ? el("small", { text: " (" + pval(c.q[i]) + ")" }) : null]),
        el("td", { "class": "num refval", text: ref ? plain(ref[0]) : "\u2014" }),
        el("td", { "class": "num clients", "data-n": isNum(nb) ? nb : null, "data-n-ref": isNum(nr) ? nr : null,
                   text: count(nb) + " / " + count(nr) })
      ]));
    });
    if (!rows.length) {
      tbody.appendChild(el("tr", null, el("td", { colspan: 9, "class": "empty",
        text: "No comparisons were published for this period, basis and segment." })));
    }
    document.getElementById("scorecard-count").textContent = "(" + rows.length + " comparisons" +
      (state.allPairs ? ", all branch pairs" : " with " + exp.reference) + ")";
    document.getElementById("scorecard-note").textContent = exp.metric_order +
      " Significance: the 95% interval excludes 0; colour and arrow say whether the change is good for the metric; * marks a change whose p-value adjusted for multiple comparisons (in brackets) is not below 0.05.";
    var om = period().omitted, names = Object.keys(om);
    document.getElementById("omitted").textContent = names.length
      ? "Not shown (statistics with a parameter, e.g. quantiles; see the statistics JSON): " +
        names.map(function (n) { return n + " (" + grouped(om[n]) + " rows)"; }).join(", ") + "."
      : "";
  }

  // ---------------------------------------------------------------- charts
  function niceTicks(lo, hi, n) {
    if (lo === hi) { lo -= 1; hi += 1; }
    var raw = (hi - lo) / n;
    var step = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var r = raw / step;
    if (r >= 7.07) step *= 10; else if (r >= 3.16) step *= 5; else if (r >= 1.41) step *= 2;
    var ticks = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      ticks.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
    }
    return ticks;
  }
  function tickLabel(v) {
    return String(Number((v * 100).toPrecision(3))) + "%";
  }

  // The axis of a forest plot: every point, and intervals up to 4x the largest point (at
  // least 5 points of %), so one enormous interval does not flatten the rest.
  function forestDomain(items) {
    var maxPoint = 0.05;
    items.forEach(function (t) { if (isNum(t[0])) maxPoint = Math.max(maxPoint, Math.abs(t[0])); });
    var cap = maxPoint * 4, lo = 0, hi = 0;
    items.forEach(function (t) {
      [t[0], t[1], t[2]].forEach(function (v) {
        if (!isNum(v)) return;
        v = Math.max(-cap, Math.min(cap, v));
        lo = Math.min(lo, v); hi = Math.max(hi, v);
      });
    });
    var pad = (hi - lo) * 0.04 || 0.01;
    return [lo - pad, hi + pad];
  }

  function renderForest(rows) {
    var box = document.getElementById("forest");
    clear(box);
    var exp = experiment(), i = windowPos(), infoOf = metricIndex();
    document.getElementById("forest-title").textContent = "(relative uplift, " + state.period +
      (period().windows.length > 1 ? ", window " + state.window : "") + ")";
    var items = rows.filter(function (c) { return c.rel[i] && isNum(c.rel[i][0]); });
    if (!items.length) {
      box.appendChild(el("p", { "class": "empty", text: "No relative uplift to plot for this selection." }));
      return;
    }
    var RH = 18, LW = 260, RW = 40, W = 900, top = 8, H = top + items.length * RH + 28;
    var dom = forestDomain(items.map(function (c) { return c.rel[i]; }));
    function X(v) {
      v = Math.max(dom[0], Math.min(dom[1], v));
      return LW + (v - dom[0]) / (dom[1] - dom[0]) * (W - LW - RW);
    }
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, "class": "forest", role: "img",
                            "aria-label": "Forest plot of relative uplift" });
    niceTicks(dom[0], dom[1], 8).forEach(function (t) {
      if (t < dom[0] || t > dom[1]) return;
      root.appendChild(svg("line", { x1: X(t), x2: X(t), y1: top, y2: H - 24, "class": t === 0 ? "zero" : "grid" }));
      root.appendChild(svg("text", { x: X(t), y: H - 10, "text-anchor": "middle", text: tickLabel(t) }));
    });
    var last = null;
    items.forEach(function (c, k) {
      var y = top + k * RH + RH / 2, t = c.rel[i], st = pairStyle(c.b, c.to);
      var info = exp.metrics[infoOf[c.m]];
      if (c.m + c.s !== last) {
        if (k) root.appendChild(svg("line", { x1: 0, x2: W, y1: y - RH / 2, y2: y - RH / 2, "class": "sep" }));
        root.appendChild(svg("text", { x: 4, y: y + 4, "class": "label", text: info.name + " \u00b7 " + c.s }));
      }
      last = c.m + c.s;
      var v = verdict(c, i, info);
      var g = svg("g", { "class": "forest-row sig-" + v.kind, "data-metric": c.m, "data-statistic": c.s,
                         "data-branch": c.b, "data-to": c.to });
      if (isNum(t[1]) && isNum(t[2])) {
        g.appendChild(svg("line", { x1: X(t[1]), x2: X(t[2]), y1: y, y2: y, stroke: st.color,
                                    "stroke-dasharray": st.dash, "class": "ci" }));
        if (t[1] < dom[0]) g.appendChild(svg("path", { d: "M" + (X(dom[0]) + 6) + "," + (y - 4) + "l-6,4l6,4", stroke: st.color, "class": "clip" }));
        if (t[2] > dom[1]) g.appendChild(svg("path", { d: "M" + (X(dom[1]) - 6) + "," + (y - 4) + "l6,4l-6,4", stroke: st.color, "class": "clip" }));
      }
      g.appendChild(svg("rect", { x: X(t[0]) - 4, y: y - 4, width: 8, height: 8, fill: st.color,
                                  "class": "pt" }, svg("title", {
        text: info.name + " (" + c.s + "), " + pairLabel(c) + ": " + pct(t[0]) + " " + interval(t, pct) })));
      g.appendChild(svg("text", { x: W - 2, y: y + 4, "text-anchor": "end", "class": "mark-text " + v.kind,
                                  text: v.kind === "good" || v.kind === "bad" ? (v.up ? "\u25B2" : "\u25BC") : "" }));
      root.appendChild(g);
    });
    box.appendChild(root);
  }

  function renderLegend(rows) {
    var box = document.getElementById("legend");
    clear(box);
    var seen = {};
    rows.forEach(function (c) {
      var key = c.b + "\u0000" + c.to;
      if (seen[key]) return;
      seen[key] = 1;
      box.appendChild(el("span", { "class": "legend-item" }, [swatch(c), pairLabel(c)]));
    });
  }

  // One chart per metric and statistic: relative uplift over the windows, one line and
  // band per branch pair.
  function lineChart(series, windows, title) {
    var W = 440, H = 170, ml = 52, mr = 8, mt = 8, mb = 24;
    var lo = 0, hi = 0;
    series.forEach(function (s) {
      s.v.forEach(function (t) {
        if (!t) return;
        [t[0], t[1], t[2]].forEach(function (v) { if (isNum(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
      });
    });
    var pad = (hi - lo) * 0.06 || 0.01;
    lo -= pad; hi += pad;
    var x0 = windows[0], x1 = windows[windows.length - 1];
    function X(w) { return ml + (x1 === x0 ? 0.5 : (w - x0) / (x1 - x0)) * (W - ml - mr); }
    function Y(v) { return mt + (1 - (v - lo) / (hi - lo)) * (H - mt - mb); }
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, "class": "line-chart", role: "img", "aria-label": title });
    niceTicks(lo, hi, 4).forEach(function (t) {
      if (t < lo || t > hi) return;
      root.appendChild(svg("line", { x1: ml, x2: W - mr, y1: Y(t), y2: Y(t), "class": t === 0 ? "zero" : "grid" }));
      root.appendChild(svg("text", { x: ml - 4, y: Y(t) + 3, "text-anchor": "end", text: tickLabel(t) }));
    });
    var every = Math.max(1, Math.ceil(windows.length / 10));
    windows.forEach(function (w, k) {
      if (k % every) return;
      root.appendChild(svg("text", { x: X(w), y: H - mb + 13, "text-anchor": "middle", text: String(w) }));
    });
    root.appendChild(svg("text", { x: (ml + W - mr) / 2, y: H - 1, "text-anchor": "middle", text: "window" }));
    series.forEach(function (s) {
      var pts = [];
      s.v.forEach(function (t, k) { if (t && isNum(t[0])) pts.push({ w: windows[k], t: t }); });
      var g = svg("g", { "class": "series", "data-branch": s.b, "data-to": s.to });
      var ci = pts.filter(function (p) { return isNum(p.t[1]) && isNum(p.t[2]); });
      if (ci.length >= 2) {
        var d = ci.map(function (p, k) { return (k ? "L" : "M") + X(p.w).toFixed(1) + "," + Y(p.t[2]).toFixed(1); }).join("") +
          ci.slice().reverse().map(function (p) { return "L" + X(p.w).toFixed(1) + "," + Y(p.t[1]).toFixed(1); }).join("") + "Z";
        g.appendChild(svg("path", { d: d, fill: s.color, "class": "band" }));
      }
      if (pts.length >= 2) {
        g.appendChild(svg("path", { d: pts.map(function (p, k) {
          return (k ? "L" : "M") + X(p.w).toFixed(1) + "," + Y(p.t[0]).toFixed(1);
        }).join(""), stroke: s.color, "stroke-dasharray": s.dash, "class": "series-line" }));
      }
      pts.forEach(function (p) {
        g.appendChild(svg("circle", { cx: X(p.w).toFixed(1), cy: Y(p.t[0]).toFixed(1), r: pts.length > 20 ? 1.6 : 2.6,
                                      fill: s.color, "class": "point" },
          svg("title", { text: s.label + ", window " + p.w + ": " + pct(p.t[0]) + " " + interval(p.t, pct) })));
      });
      root.appendChild(g);
    });
    return root;
  }

  function renderTimeline(rows) {
    var panel = document.getElementById("timeline-panel");
    var box = document.getElementById("timeline");
    clear(box);
    var windows = period().windows;
    panel.hidden = windows.length < 2;
    if (windows.length < 2) return;
    var exp = experiment(), infoOf = metricIndex(), groups = [], byKey = {};
    rows.forEach(function (c) {
      var key = c.m + "\u0000" + c.s;
      if (!byKey[key]) { byKey[key] = { m: c.m, s: c.s, series: [] }; groups.push(byKey[key]); }
      var st = pairStyle(c.b, c.to);
      byKey[key].series.push({ b: c.b, to: c.to, v: c.rel, color: st.color, dash: st.dash, label: pairLabel(c) });
    });
    groups.forEach(function (g) {
      var info = exp.metrics[infoOf[g.m]];
      box.appendChild(el("article", { "class": "card", "data-metric": g.m, "data-statistic": g.s }, [
        el("h3", { text: info.name }),
        el("p", { "class": "sub", text: g.m + " \u00b7 " + g.s }),
        lineChart(g.series, windows, info.name + " relative uplift over windows")
      ]));
    });
    document.getElementById("timeline-count").textContent = "(" + groups.length + " charts)";
  }

  // ---------------------------------------------------------------- messages
  function renderMessages() {
    var box = document.getElementById("messages");
    clear(box);
    var exp = experiment(), kinds = exp.messages;
    var total = 0;
    kinds.forEach(function (k) { total += k.count; });
    document.getElementById("messages-count").textContent =
      "(" + grouped(total) + " in " + kinds.length + " kinds)";
    if (!kinds.length) {
      box.appendChild(el("p", { "class": "empty", text: "No errors or warnings were published." }));
      return;
    }
    var tbody = el("tbody");
    kinds.forEach(function (k) {
      var facets = Object.keys(k.facets).filter(function (f) { return !/_more$/.test(f); }).map(function (f) {
        var more = k.facets[f + "_more"];
        return f + ": " + k.facets[f].join(", ") + (more ? " and " + more + " more" : "");
      }).join("; ");
      var examples = el("details", null, [el("summary", { text: k.examples.length + " example" + (k.examples.length > 1 ? "s" : "") })]
        .concat(k.examples.map(function (e) {
          var where = [e.analysis_period, e.window_index ? "window " + e.window_index : null, e.metric, e.statistic,
                       e.segment, e.analysis_basis].filter(function (x) { return x; }).join(" \u00b7 ");
          return el("p", { "class": "example" }, [where ? el("small", { text: where + ": " }) : null, e.message]);
        })));
      tbody.appendChild(el("tr", { "class": "kind " + (k.level === "ERROR" ? "error" : "warning") }, [
        el("td", null, el("span", { "class": "badge " + (k.level === "ERROR" ? "bad" : "warn"), text: k.level })),
        el("td", { "class": "num kind-count", text: grouped(k.count) }),
        el("td", { text: k.exception_type }),
        el("td", { "class": "msg" }, [el("div", { "class": "pattern", text: k.pattern }),
                                      facets ? el("small", { text: facets }) : null, examples])
      ]));
    });
    box.appendChild(el("div", { "class": "table-wrap" }, el("table", { id: "messages-table" }, [
      el("thead", null, el("tr", null, ["level", "count", "type", "message (numbers and names blanked)"].map(function (h) {
        return el("th", { text: h });
      }))),
      tbody
    ])));
  }

  // ---------------------------------------------------------------- wiring
  var renderedExperiment = null;
  // Each step is timed with performance.measure ("report:<step>") for the benchmark.
  function timed(name, fn) {
    var t0 = performance.now();
    var out = fn();
    if (performance.measure) performance.measure("report:" + name, { start: t0, end: performance.now() });
    return out;
  }
  function render() {
    timed("filters", refreshFilters);
    var rows = shownComparisons();
    timed("status", renderStatus);
    timed("scorecard", function () { renderScorecard(rows); });
    timed("forest", function () { renderLegend(rows); renderForest(rows); });
    timed("timeline", function () { renderTimeline(rows); });
    if (renderedExperiment !== state.experiment) {
      timed("messages", renderMessages);
      renderedExperiment = state.experiment;
    }
    document.body.setAttribute("data-rendered", String(Date.now()));
  }

  function init() {
    var md = [];
    if (DATA.source) md.push("Source: " + DATA.source);
    if (DATA.generated_at) md.push("rendered " + DATA.generated_at);
    document.getElementById("meta").textContent = md.join(" \u00b7 ");
    if (!DATA.experiments.length) {
      document.getElementById("status").appendChild(el("p", { "class": "empty", text: "No results." }));
      return;
    }
    state.experiment = DATA.experiments[0].slug;
    ["experiment", "period", "window", "basis", "segment"].forEach(function (name) {
      document.getElementById("f-" + name).addEventListener("change", function (ev) {
        var v = ev.target.value;
        state[name] = name === "window" ? Number(v) : v;
        if (name === "period" || name === "experiment") state.window = null;
        render();
      });
    });
    document.getElementById("f-pairs").addEventListener("change", function (ev) {
      state.allPairs = ev.target.checked;
      render();
    });
    render();
    // when the first render is on screen (read by benchmarks/report_bench.py)
    requestAnimationFrame(function () {
      setTimeout(function () { document.body.setAttribute("data-painted", String(performance.now())); }, 0);
    });
  }

  init();
})();
