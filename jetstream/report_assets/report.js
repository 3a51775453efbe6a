(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                 "#7F3C8D", "#3B3B3B", "#F0E442", "#8C564B"];
  var SRM_ALPHA = 0.001;
  var MAX_TABLE_ROWS = 500;
  var ALL = "*";
  var COLUMNS = ["metric", "statistic", "parameter", "branch", "comparison",
                 "comparison_to_branch", "window_index", "point", "lower", "upper", "ci_width",
                 "p_value", "p_value_adjusted", "segment", "analysis_basis"];
  var NUMERIC = { point: 1, lower: 1, upper: 1, ci_width: 1, p_value: 1, p_value_adjusted: 1 };
  var ERROR_COLUMNS = ["log_level", "analysis_period", "window_index", "data_source", "metric",
                       "statistic", "exception_type", "message", "timestamp"];

  var state = { experiment: null, period: null, basis: null, segment: null,
                metric: ALL, statistic: ALL, level: ALL };

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
    Object.keys(attrs).forEach(function (k) {
      if (attrs[k] === null || attrs[k] === undefined) return;
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
  }
  function append(node, children) {
    if (children === null || children === undefined) return;
    if (!Array.isArray(children)) children = [children];
    children.forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function uniq(values) {
    var seen = {}, out = [];
    values.forEach(function (v) {
      var k = String(v);
      if (!Object.prototype.hasOwnProperty.call(seen, k)) { seen[k] = 1; out.push(v); }
    });
    return out;
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v, percent) {
    if (!isNum(v)) return v === null || v === undefined ? "" : String(v);
    var a = Math.abs(v);
    if (a === 0) return percent ? "0%" : "0";
    if (percent) return String(Number((v * 100).toPrecision(3))) + "%";
    if (a >= 10000) return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
    if (a >= 1) return String(Number(v.toPrecision(4)));
    if (a >= 1e-4) return String(Number(v.toPrecision(3)));
    return v.toExponential(2);
  }
  function windowNumber(row) {
    var n = parseInt(row.window_index, 10);
    return isNaN(n) ? 1 : n;
  }
  function paramKey(p) { return p === null || p === undefined ? "" : String(p); }

  // ---------------------------------------------------------------- data access
  function experiment() {
    for (var i = 0; i < DATA.experiments.length; i++) {
      if (DATA.experiments[i].slug === state.experiment) return DATA.experiments[i];
    }
    return DATA.experiments[0];
  }
  function periodRows() {
    var exp = experiment();
    return (exp && exp.statistics[state.period]) || [];
  }
  function metricInfo(slug) {
    var md = experiment().metadata;
    return (md && md.metrics && md.metrics[slug]) || null;
  }
  function filteredRows() {
    return periodRows().filter(function (r) {
      return (r.analysis_basis || "enrollments") === state.basis &&
        (r.segment || "all") === state.segment &&
        (state.metric === ALL || r.metric === state.metric) &&
        (state.statistic === ALL || r.statistic === state.statistic);
    });
  }
  function branchColors() {
    var exp = experiment(), names = [];
    Object.keys(exp.statistics).forEach(function (p) {
      exp.statistics[p].forEach(function (r) {
        if (r.branch) names.push(r.branch);
        if (r.comparison_to_branch) names.push(r.comparison_to_branch);
      });
    });
    names = uniq(names).sort(function (a, b) {
      // the usual reference branch first, then alphabetical
      if (a === "control") return -1;
      if (b === "control") return 1;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    var colors = {};
    names.forEach(function (n, i) { colors[n] = PALETTE[i % PALETTE.length]; });
    return colors;
  }

  // ---------------------------------------------------------------- filters
  function fillSelect(id, values, labels, current, allLabel) {
    var select = document.getElementById(id);
    clear(select);
    if (allLabel) select.appendChild(el("option", { value: ALL, text: allLabel }));
    values.forEach(function (v, i) {
      select.appendChild(el("option", { value: v, text: labels ? labels[i] : v }));
    });
    var options = (allLabel ? [ALL] : []).concat(values);
    var value = options.indexOf(current) >= 0 ? current : (options.length ? options[0] : "");
    select.value = value;
    select.disabled = options.length <= 1;
    return value;
  }

  function sortedByPeriod(keys) {
    var order = DATA.period_order || [];
    return keys.slice().sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
  }

  function defaultPeriod(exp) {
    var periods = sortedByPeriod(Object.keys(exp.statistics));
    var nonEmpty = periods.filter(function (p) { return exp.statistics[p].length > 0; });
    var preferred = ["weekly", "daily", "overall"];
    for (var i = 0; i < preferred.length; i++) {
      if (nonEmpty.indexOf(preferred[i]) >= 0) return preferred[i];
    }
    return nonEmpty[0] || periods[0] || null;
  }

  function refreshFilters() {
    var exps = DATA.experiments.map(function (e) { return e.slug; });
    var names = DATA.experiments.map(function (e) { return e.name || e.slug; });
    state.experiment = fillSelect("f-experiment", exps, names, state.experiment, null);
    var exp = experiment();
    var periods = sortedByPeriod(Object.keys(exp.statistics));
    var labels = periods.map(function (p) {
      return p + " (" + exp.statistics[p].length + " rows)";
    });
    if (periods.indexOf(state.period) < 0) state.period = defaultPeriod(exp);
    state.period = fillSelect("f-period", periods, labels, state.period, null);
    var rows = periodRows();
    var bases = uniq(rows.map(function (r) { return r.analysis_basis || "enrollments"; })).sort();
    state.basis = fillSelect("f-basis", bases, null, state.basis || "enrollments", null);
    var segs = uniq(rows.map(function (r) { return r.segment || "all"; })).sort(function (a, b) {
      if (a === "all") return -1;
      if (b === "all") return 1;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    state.segment = fillSelect("f-segment", segs, null, state.segment || "all", null);
    var metrics = uniq(rows.map(function (r) { return r.metric; })).sort();
    var metricLabels = metrics.map(function (m) {
      var info = metricInfo(m);
      return info && info.friendly_name && info.friendly_name !== m
        ? info.friendly_name + " (" + m + ")" : m;
    });
    state.metric = fillSelect("f-metric", metrics, metricLabels, state.metric, "All metrics");
    var stats = uniq(rows.filter(function (r) {
      return state.metric === ALL || r.metric === state.metric;
    }).map(function (r) { return r.statistic; })).sort();
    state.statistic = fillSelect("f-statistic", stats, null, state.statistic, "All statistics");
  }

  // ---------------------------------------------------------------- charts
  function niceTicks(lo, hi, count) {
    if (lo === hi) { lo -= 1; hi += 1; }
    var raw = (hi - lo) / count;
    var step = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var ratio = raw / step;
    if (ratio >= 7.07) step *= 10; else if (ratio >= 3.16) step *= 5; else if (ratio >= 1.41) step *= 2;
    var ticks = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      ticks.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
    }
    return ticks;
  }

  // series: [{name, color, points: [{x, point, lower, upper, row}]}]
  function lineChart(series, opts) {
    var W = 420, H = 190, ml = 56, mr = 10, mt = 8, mb = 26;
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        xs.push(p.x);
        ys.push(p.point);
        if (isNum(p.lower)) ys.push(p.lower);
        if (isNum(p.upper)) ys.push(p.upper);
      });
    });
    if (opts.zero) ys.push(0);
    var xmin = Math.min.apply(null, xs), xmax = Math.max.apply(null, xs);
    var ymin = Math.min.apply(null, ys), ymax = Math.max.apply(null, ys);
    var pad = (ymax - ymin) * 0.06 || Math.abs(ymax) * 0.1 || 1;
    ymin -= pad; ymax += pad;
    var single = xmin === xmax;
    function X(x) {
      return single ? ml + (W - ml - mr) / 2 : ml + ((x - xmin) / (xmax - xmin)) * (W - ml - mr);
    }
    function Y(y) { return mt + (1 - (y - ymin) / (ymax - ymin)) * (H - mt - mb); }
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
                            "aria-label": opts.title, "class": "line-chart" });
    niceTicks(ymin, ymax, 5).forEach(function (t) {
      if (t < ymin || t > ymax) return;
      root.appendChild(svg("line", { x1: ml, x2: W - mr, y1: Y(t), y2: Y(t), "class": "grid" }));
      root.appendChild(svg("text", { x: ml - 4, y: Y(t) + 3, "text-anchor": "end",
                                     text: fmt(t, opts.percent) }));
    });
    if (opts.zero && ymin < 0 && ymax > 0) {
      root.appendChild(svg("line", { x1: ml, x2: W - mr, y1: Y(0), y2: Y(0), "class": "zero" }));
    }
    root.appendChild(svg("line", { x1: ml, x2: ml, y1: mt, y2: H - mb, "class": "axis" }));
    root.appendChild(svg("line", { x1: ml, x2: W - mr, y1: H - mb, y2: H - mb, "class": "axis" }));
    var windows = uniq(xs).sort(function (a, b) { return a - b; });
    var every = Math.max(1, Math.ceil(windows.length / 10));
    windows.forEach(function (x, i) {
      if (i % every) return;
      root.appendChild(svg("text", { x: X(x), y: H - mb + 13, "text-anchor": "middle",
                                     text: String(x) }));
    });
    root.appendChild(svg("text", { x: (ml + W - mr) / 2, y: H - 2, "text-anchor": "middle",
                                   text: "analysis window" }));
    var offset = single && series.length > 1 ? 14 / (series.length - 1) : 0;
    series.forEach(function (s, si) {
      var pts = s.points;
      var dx = single ? (si - (series.length - 1) / 2) * offset : 0;
      var withCi = pts.filter(function (p) { return isNum(p.lower) && isNum(p.upper); });
      var g = svg("g", { "class": "series", "data-series": s.name });
      if (withCi.length >= 2) {
        var top = withCi.map(function (p, i) {
          return (i ? "L" : "M") + X(p.x).toFixed(1) + "," + Y(p.upper).toFixed(1);
        });
        var bottom = withCi.slice().reverse().map(function (p) {
          return "L" + X(p.x).toFixed(1) + "," + Y(p.lower).toFixed(1);
        });
        g.appendChild(svg("path", { d: top.concat(bottom).join("") + "Z", fill: s.color,
                                    "class": "band" }));
      } else {
        withCi.forEach(function (p) {
          var x = (X(p.x) + dx).toFixed(1);
          g.appendChild(svg("path", {
            d: "M" + x + "," + Y(p.lower).toFixed(1) + "L" + x + "," + Y(p.upper).toFixed(1),
            stroke: s.color, "class": "whisker" }));
        });
      }
      if (pts.length >= 2) {
        g.appendChild(svg("path", {
          d: pts.map(function (p, i) {
            return (i ? "L" : "M") + X(p.x).toFixed(1) + "," + Y(p.point).toFixed(1);
          }).join(""),
          stroke: s.color, "class": "series-line" }));
      }
      pts.forEach(function (p) {
        var tip = s.name + ", window " + p.x + ": " + fmt(p.point, opts.percent);
        if (isNum(p.lower) && isNum(p.upper)) {
          tip += " [" + fmt(p.lower, opts.percent) + ", " + fmt(p.upper, opts.percent) + "]";
        }
        if (isNum(p.p_value)) tip += ", p = " + fmt(p.p_value);
        g.appendChild(svg("circle", { cx: (X(p.x) + dx).toFixed(1), cy: Y(p.point).toFixed(1),
                                      r: pts.length > 40 ? 1.8 : 3, fill: s.color,
                                      "class": "point" },
                          svg("title", { text: tip })));
      });
      root.appendChild(g);
    });
    return root;
  }

  function legend(series) {
    return el("div", { "class": "legend" }, series.map(function (s) {
      return el("span", null, [el("i", { style: "background:" + s.color }), s.name]);
    }));
  }

  function toSeries(rows, nameOf, colorOf) {
    var byName = {}, order = [];
    rows.forEach(function (r) {
      if (!isNum(r.point)) return;
      var name = nameOf(r);
      if (!byName[name]) { byName[name] = { name: name, color: colorOf(r), points: [] }; order.push(name); }
      byName[name].points.push({ x: windowNumber(r), point: r.point, lower: r.lower,
                                 upper: r.upper, p_value: r.p_value });
    });
    return order.map(function (n) {
      byName[n].points.sort(function (a, b) { return a.x - b.x; });
      return byName[n];
    });
  }

  function chartBlock(title, series, opts) {
    return el("div", { "class": "chart", "data-chart": opts.kind }, [
      el("p", { "class": "ctitle", text: title }),
      lineChart(series, { title: title, zero: opts.zero, percent: opts.percent }),
      legend(series)
    ]);
  }

  function renderCharts(rows) {
    var container = document.getElementById("charts");
    clear(container);
    var colors = branchColors();
    var groups = {}, order = [];
    rows.forEach(function (r) {
      var key = [r.metric, r.statistic, paramKey(r.parameter)].join("\u0000");
      if (!groups[key]) { groups[key] = []; order.push(key); }
      groups[key].push(r);
    });
    order.sort();
    var charts = 0;
    order.forEach(function (key) {
      var rs = groups[key], first = rs[0];
      var info = metricInfo(first.metric);
      var heading = (info && info.friendly_name) || first.metric;
      var sub = first.metric + " \u00b7 " + first.statistic +
        (paramKey(first.parameter) ? " \u00b7 parameter " + first.parameter : "");
      var card = el("article", { "class": "card", "data-metric": first.metric,
                                 "data-statistic": first.statistic }, [
        el("h3", { text: heading }),
        el("p", { "class": "sub", text: sub +
          (info && info.description ? " \u2014 " + info.description : "") })
      ]);
      var branchRows = rs.filter(function (r) { return !r.comparison; });
      if (branchRows.length) {
        var s = toSeries(branchRows, function (r) { return r.branch || "(all)"; },
                         function (r) { return colors[r.branch] || PALETTE[0]; });
        if (s.length) { card.appendChild(chartBlock("Branches", s, { kind: "branches" })); charts++; }
      }
      var kinds = uniq(rs.filter(function (r) { return r.comparison; })
        .map(function (r) { return r.comparison; })).sort();
      kinds.forEach(function (kind) {
        var cr = rs.filter(function (r) { return r.comparison === kind; });
        var s = toSeries(cr, function (r) {
          return (r.branch || "?") + " vs " + (r.comparison_to_branch || "reference");
        }, function (r) { return colors[r.branch] || PALETTE[1]; });
        if (!s.length) return;
        var percent = kind === "relative_uplift";
        var label = kind === "relative_uplift" ? "Relative uplift"
          : kind === "difference" ? "Difference" : kind;
        card.appendChild(chartBlock(label, s, { kind: kind, zero: true, percent: percent }));
        charts++;
      });
      container.appendChild(card);
    });
    if (!order.length) container.appendChild(el("p", { "class": "empty", text: "No rows match the filters." }));
    document.getElementById("charts-count").textContent =
      "(" + order.length + " metric/statistic groups, " + charts + " charts)";
  }

  // ---------------------------------------------------------------- rows table
  function renderTable(rows) {
    var table = document.getElementById("rows");
    var thead = table.tHead, tbody = table.tBodies[0];
    clear(thead); clear(tbody);
    thead.appendChild(el("tr", null, COLUMNS.map(function (c) { return el("th", { text: c }); })));
    var sorted = rows.slice().sort(function (a, b) {
      return windowNumber(a) - windowNumber(b) ||
        String(a.metric).localeCompare(String(b.metric)) ||
        String(a.statistic).localeCompare(String(b.statistic)) ||
        String(a.comparison || "").localeCompare(String(b.comparison || "")) ||
        String(a.branch || "").localeCompare(String(b.branch || ""));
    });
    sorted.slice(0, MAX_TABLE_ROWS).forEach(function (r) {
      tbody.appendChild(el("tr", null, COLUMNS.map(function (c) {
        var v = r[c];
        return el("td", { "class": NUMERIC[c] ? "num" : null,
                          text: NUMERIC[c] ? fmt(v) : v === null || v === undefined ? "" : String(v) });
      })));
    });
    document.getElementById("rows-count").textContent = "(" + rows.length + ")";
    document.getElementById("rows-note").textContent = rows.length > MAX_TABLE_ROWS
      ? "Showing the first " + MAX_TABLE_ROWS + " of " + rows.length + " rows; narrow the filters to see the rest."
      : "";
  }

  // ---------------------------------------------------------------- SRM
  function renderSrm() {
    var box = document.getElementById("srm");
    clear(box);
    var md = experiment().metadata;
    var rows = (md && md.sample_ratio_mismatch) || [];
    if (!rows.length) {
      box.appendChild(el("p", { "class": "empty", text: md
        ? "No sample-ratio-mismatch results were published." : "No metadata document was published." }));
      return;
    }
    var groups = {}, order = [];
    rows.forEach(function (r) {
      var key = [r.period || "", r.window_index || "", r.analysis_basis || "enrollments",
                 r.segment || "all", r.metric || ""].join("\u0000");
      if (!groups[key]) { groups[key] = []; order.push(key); }
      groups[key].push(r);
    });
    var flagged = 0;
    var head = ["", "period", "window", "basis", "segment", "branch shares (observed / expected)", "p-value", "note"];
    var tbody = el("tbody");
    order.forEach(function (key) {
      var rs = groups[key], r0 = rs[0];
      var p = rs.map(function (r) { return r.p_value; }).filter(isNum)[0];
      var bad = isNum(p) && p < SRM_ALPHA;
      if (bad) flagged++;
      var shares = rs.map(function (r) {
        return (r.branch || "?") + " " + fmt(r.point, true) +
          (r.parameter !== null && r.parameter !== undefined ? " / " + fmt(Number(r.parameter), true) : "");
      }).join(", ");
      tbody.appendChild(el("tr", { "class": bad ? "srm-flag" : null }, [
        el("td", null, el("span", { "class": "badge " + (bad ? "bad" : "ok"), text: bad ? "MISMATCH" : "ok" })),
        el("td", { text: r0.period || "" }),
        el("td", { text: r0.window_index === null || r0.window_index === undefined ? "" : String(r0.window_index) }),
        el("td", { text: r0.analysis_basis || "enrollments" }),
        el("td", { text: r0.segment || "all" }),
        el("td", { text: shares }),
        el("td", { "class": "num", text: fmt(p) }),
        el("td", { "class": "msg", text: r0.note || "" })
      ]));
    });
    box.appendChild(el("p", null, flagged
      ? el("span", { "class": "badge bad", text: flagged + " of " + order.length + " tests flag a sample ratio mismatch (p < " + SRM_ALPHA + ")" })
      : el("span", { "class": "badge ok", text: "no sample ratio mismatch in " + order.length + " tests" })));
    box.appendChild(el("div", { "class": "table-wrap" }, el("table", { id: "srm-table" }, [
      el("thead", null, el("tr", null, head.map(function (h) { return el("th", { text: h }); }))),
      tbody
    ])));
  }

  // ---------------------------------------------------------------- errors
  function renderErrors() {
    var box = document.getElementById("errors");
    clear(box);
    var all = experiment().errors || [];
    var levels = uniq(all.map(function (e) { return e.log_level || "ERROR"; })).sort();
    state.level = fillSelect("f-level", levels, null, state.level, "All levels");
    var errors = all.filter(function (e) {
      return state.level === ALL || (e.log_level || "ERROR") === state.level;
    });
    var nErr = all.filter(function (e) { return (e.log_level || "ERROR") === "ERROR"; }).length;
    document.getElementById("errors-count").textContent =
      "(" + nErr + " errors, " + (all.length - nErr) + " warnings)";
    if (!errors.length) {
      box.appendChild(el("p", { "class": "empty", text: all.length ? "None at this level." : "No errors or warnings were published." }));
      return;
    }
    var groups = {}, order = [];
    errors.forEach(function (e) {
      var key = e.metric || "(experiment)";
      if (!groups[key]) { groups[key] = []; order.push(key); }
      groups[key].push(e);
    });
    order.sort();
    var tbody = el("tbody");
    order.forEach(function (key) {
      tbody.appendChild(el("tr", null, el("td", { colspan: ERROR_COLUMNS.length, "class": "group",
                                                  text: key + " (" + groups[key].length + ")" })));
      groups[key].forEach(function (e) {
        tbody.appendChild(el("tr", { "class": "error-row" }, ERROR_COLUMNS.map(function (c) {
          var v = e[c];
          if (c === "log_level") {
            var lvl = v || "ERROR";
            return el("td", null, el("span", { "class": "badge " + (lvl === "ERROR" ? "bad" : "warn"), text: lvl }));
          }
          return el("td", { "class": c === "message" ? "msg" : null,
                            text: v === null || v === undefined ? "" : String(v) });
        })));
      });
    });
    box.appendChild(el("div", { "class": "table-wrap" }, el("table", { id: "errors-table" }, [
      el("thead", null, el("tr", null, ERROR_COLUMNS.map(function (h) { return el("th", { text: h }); }))),
      tbody
    ])));
  }

  // ---------------------------------------------------------------- wiring
  function render() {
    refreshFilters();
    var rows = filteredRows();
    renderCharts(rows);
    renderTable(rows);
    renderSrm();
    renderErrors();
    document.body.setAttribute("data-rendered", String(Date.now()));
  }

  function init() {
    var md = [];
    if (DATA.source) md.push("Source: " + DATA.source);
    if (DATA.generated_at) md.push("rendered " + DATA.generated_at);
    document.getElementById("meta").textContent = md.join(" \u00b7 ");
    if (!DATA.experiments.length) {
      document.getElementById("charts").appendChild(el("p", { "class": "empty", text: "No results." }));
      return;
    }
    state.experiment = DATA.experiments[0].slug;
    ["experiment", "period", "basis", "segment", "metric", "statistic", "level"].forEach(function (name) {
      var id = name === "level" ? "f-level" : "f-" + name;
      document.getElementById(id).addEventListener("change", function (ev) {
        state[name] = ev.target.value;
        render();
      });
    });
    render();
  }

  init();
})();
