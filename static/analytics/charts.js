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
              fill: false, tension: 0.2, pointRadius: spec.labels.length > 60 ? 0 : 2, spanGaps: true
            };
          })
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { title: { display: false }, legend: { position: "bottom" } },
          scales: { y: { beginAtZero: true } }
        }
      });
      canvas.setAttribute("data-rendered", "1");
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
