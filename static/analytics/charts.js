// Draws the charts described by the page's <script type="application/json" id="analytics-charts">.
// A static file (the CSP allows no inline script); the tables beside each chart carry the same data.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("analytics-charts");
    if (!source || typeof Chart === "undefined") { return; }
    var palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];
    JSON.parse(source.textContent).forEach(function (spec) {
      var canvas = document.getElementById(spec.canvas);
      if (!canvas) { return; }
      new Chart(canvas, {
        type: spec.type,
        data: {
          labels: spec.labels,
          datasets: spec.datasets.map(function (ds, i) {
            return {
              label: ds.label, data: ds.data, borderColor: palette[i % palette.length],
              backgroundColor: palette[i % palette.length] + (spec.type === "bar" ? "cc" : "33"),
              fill: false, tension: 0.2, spanGaps: true,
              // One point has no line to show it: draw it as a clear dot (a bar chart needs nothing).
              pointRadius: spec.labels.length > 60 ? 0 : (spec.labels.length === 1 ? 6 : 3),
              pointHoverRadius: spec.labels.length === 1 ? 8 : 5,
              maxBarThickness: 48
            };
          })
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { title: { display: false }, legend: { position: "bottom" } },
          // offset: a single category sits in the middle of the axis, not on its edge.
          scales: { x: { offset: true }, y: { beginAtZero: true } }
        }
      });
      canvas.setAttribute("data-rendered", "1");
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
