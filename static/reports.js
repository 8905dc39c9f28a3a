/* Report charts: each <script type="application/json" data-chart="ID"> holds one chart's data
   (built on the server, the same numbers as the tables); draw it into the element with that id
   using the vendored Apache ECharts. No inline script, no eval: the CSP stays 'self' only. */
(function () {
  "use strict";

  function yuan(v) {
    return v === null || v === undefined ? "<3" : "¥" + Number(v).toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  function option(d) {
    var fmt = d.money ? yuan : function (v) { return v === null || v === undefined ? "<3" : String(v); };
    var base = {
      animation: false,
      aria: {enabled: true},
      tooltip: {trigger: d.kind === "pie" ? "item" : "axis", valueFormatter: fmt},
      legend: {top: 0, type: "scroll"},
      grid: {left: 8, right: 16, bottom: 8, top: 40, containLabel: true}
    };
    if (d.kind === "pie") {
      var s = d.series[0] || {data: []};
      base.series = [{
        name: s.name, type: "pie", radius: ["35%", "65%"],
        data: d.categories.map(function (c, i) { return {name: c, value: s.data[i]}; })
      }];
      return base;
    }
    base.xAxis = {type: "category", data: d.categories};
    base.yAxis = {type: "value", axisLabel: {formatter: d.money ? function (v) { return "¥" + v; } : null}};
    base.series = d.series.map(function (s) {
      return {
        name: s.name,
        type: d.kind === "line" ? "line" : "bar",
        stack: d.kind === "stack" ? "total" : undefined,
        data: s.data.map(function (v) { return v === null ? "-" : v; })
      };
    });
    return base;
  }

  function draw() {
    if (typeof window.echarts === "undefined") { return; }
    var nodes = document.querySelectorAll('script[type="application/json"][data-chart]');
    Array.prototype.forEach.call(nodes, function (el) {
      var box = document.getElementById(el.getAttribute("data-chart"));
      if (!box) { return; }
      var data = JSON.parse(el.textContent);
      var chart = window.echarts.init(box, null, {renderer: "canvas"});
      chart.setOption(option(data));
      box.setAttribute("data-rendered", "1");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
