/* Dashboard charts (Apache ECharts, vendored in static/vendor/echarts). No inline script: data comes
   from data- attributes (the trend), from the JSON endpoint of one level of the hierarchy, and the
   texts in the page's language from the JSON data block #dashboard-texts (json_script). */
(function () {
  "use strict";

  var TEXTS = {};

  // "%(name)s（%(kind)s）" with values: the placeholders of Django's translated strings.
  function fmt(key, values) {
    return (TEXTS[key] || "").replace(/%\((\w+)\)s/g, function (_m, name) {
      return values[name] === undefined || values[name] === null ? "" : String(values[name]);
    });
  }

  var COLORS = {
    named: "#1e7d32", warned: "#e08a00", eligible: "#1565c0", withdrawn: "#8c1d17", not_eligible: "#9aa5b1",
    no_data: "#d5dbe3"
  };

  function hierarchy(el) {
    var chart = echarts.init(el);
    var stack = [];  // urls of the levels above the one shown
    var current = null;
    var up = document.getElementById("tree-up");
    var where = document.getElementById("tree-where");

    function nodes(data) {
      var labels = {};
      data.statuses.forEach(function (s) { labels[s.key] = s.label; });
      return data.children.map(function (c) {
        var node = {
          name: c.name, code: c.code, value: Math.max(c.total, 1), url: c.url, below: c.below,
          kindLabel: c.kind_label, statusLabel: c.status_label, counts: c.counts, labels: labels
        };
        if (c.below > 0) {
          node.children = data.statuses.filter(function (s) { return c.counts[s.key] > 0; }).map(function (s) {
            return { name: s.label, value: c.counts[s.key], code: c.code, url: c.url, below: c.below,
                     itemStyle: { color: COLORS[s.key] } };
          });
        } else {
          node.itemStyle = { color: COLORS[c.status] || "#9aa5b1" };
        }
        return node;
      });
    }

    // The 下级单位 table follows the level the picture shows (it is rendered for the page's unit; a
    // drill-down or 返回上级 rebuilds its rows from the same JSON, names as text, never as HTML).
    function table(data) {
      var tbl = document.getElementById("children");
      if (!tbl) { return; }
      var body = tbl.tBodies[0];
      tbl.setAttribute("data-unit", data.unit.code);
      var of = document.getElementById("children-of");
      if (of) { of.textContent = data.unit.name; }
      while (body.firstChild) { body.removeChild(body.firstChild); }
      data.children.forEach(function (c) {
        var tr = document.createElement("tr");
        tr.setAttribute("data-code", c.code);
        var th = document.createElement("th");
        th.setAttribute("scope", "row");
        var a = document.createElement("a");
        a.href = c.page;
        a.textContent = c.name;
        var kind = document.createElement("span");
        kind.className = "muted small-text";
        kind.textContent = c.kind_label;
        th.appendChild(a);
        th.appendChild(document.createTextNode(" "));
        th.appendChild(kind);
        tr.appendChild(th);
        var td = document.createElement("td");
        var pill = document.createElement("span");
        pill.className = "dash-pill" + (c.status ? " st-" + c.status : "");
        pill.textContent = c.status_label || "";
        td.appendChild(pill);
        tr.appendChild(td);
        data.statuses.forEach(function (st) {
          var n = document.createElement("td");
          n.textContent = String(c.counts[st.key] || 0);
          tr.appendChild(n);
        });
        body.appendChild(tr);
      });
    }

    function render(data) {
      current = data;
      table(data);
      where.textContent = fmt(data.unit.status_label ? "where_status" : "where", {
        name: data.unit.name, kind: data.unit.kind_label, status: data.unit.status_label, n: data.children.length
      });
      up.hidden = stack.length === 0;
      chart.setOption({
        tooltip: {
          // The tooltip is HTML: unit names come from imports, so every one is escaped.
          formatter: function (p) {
            var esc = echarts.format.encodeHTML;
            var d = p.data || {};
            if (!d.counts) { return esc(fmt("count", { label: p.name, n: p.value })); }
            var lines = [esc(fmt("unit", { name: d.name, kind: d.kindLabel, status: d.statusLabel || "—" }))];
            Object.keys(d.counts).forEach(function (k) { if (d.counts[k]) { lines.push(esc(d.labels[k]) + " " + d.counts[k]); } });
            return lines.join("<br>");
          }
        },
        series: [{
          type: "treemap", name: data.unit.name, data: nodes(data), roam: false, nodeClick: false,
          breadcrumb: { show: false }, animationDurationUpdate: 300, top: 0, left: 0, right: 0, bottom: 0,
          // Short labels, never cut mid-word ("未达…"): a unit's block says its name (its colour and the
          // legend say its status); the blocks of a unit's statuses only their number. The tooltip
          // says everything. A name that does not fit its block wraps.
          label: { show: true, overflow: "break", formatter: function (p) {
            var d = p.data || {};
            return d.counts ? p.name : String(p.value);
          }, fontSize: 12 },
          upperLabel: { show: true, height: 22, color: "#fff", fontWeight: "bold", overflow: "truncate" },
          levels: [
            { itemStyle: { borderColor: "#fff", borderWidth: 0, gapWidth: 3 }, upperLabel: { show: false } },
            { itemStyle: { borderColor: "#5b6675", borderWidth: 2, gapWidth: 1 } },
            { itemStyle: { borderColor: "#fff", borderWidth: 1, gapWidth: 0 }, upperLabel: { show: false } }
          ]
        }]
      }, true);
    }

    function load(url, push) {
      return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (data.error) { where.textContent = data.error; return; }
          if (push && current) { stack.push(current); }
          render(data);
        });
    }

    chart.on("click", function (p) {
      var d = p.data || {};
      if (d.url && d.below > 0) { load(d.url, true); }
    });
    up.addEventListener("click", function () {
      if (stack.length) { render(stack.pop()); }
    });
    window.addEventListener("resize", function () { chart.resize(); });
    load(el.getAttribute("data-url"), false);
  }

  function trend(el) {
    var data = JSON.parse(el.getAttribute("data-trend"));
    var chart = echarts.init(el);
    var empty = data.total.every(function (v) { return v === null; });
    chart.setOption({
      // Drawn on the canvas: ECharts' HTML tooltip for an axis writes style="" attributes, which the
      // Content-Security-Policy (style-src 'self') blocks.
      tooltip: { trigger: "axis", renderMode: "richText" },
      legend: { data: [TEXTS.named, TEXTS.eligible], top: 0 },
      grid: { left: 40, right: 12, top: 32, bottom: 28 },
      xAxis: { type: "category", data: data.days, axisLabel: { fontSize: 10 } },
      yAxis: { type: "value", minInterval: 1 },
      graphic: empty ? [{ type: "text", left: "center", top: "middle", style: { text: TEXTS.no_trend, fill: "#5b6675", fontSize: 14 } }] : [],
      series: [
        { name: TEXTS.named, type: "line", data: data.named, connectNulls: false, showSymbol: true, itemStyle: { color: COLORS.named } },
        { name: TEXTS.eligible, type: "line", data: data.eligible, connectNulls: false, showSymbol: true, itemStyle: { color: COLORS.eligible } }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function start() {
    if (typeof echarts === "undefined") { return; }
    var texts = document.getElementById("dashboard-texts");
    if (texts) { TEXTS = JSON.parse(texts.textContent); }
    var tree = document.getElementById("tree");
    if (tree) { hierarchy(tree); }
    var t = document.getElementById("trend");
    if (t) { trend(t); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
