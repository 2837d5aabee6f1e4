// The analytics charts: each <canvas data-chart-for="TABLE_ID"> is drawn from the table beside it
// (its first column the labels, each other column a series), so the chart and its accessible table
// always show the same numbers. Chart.js is vendored (static/vendor/chart.umd.min.js); no inline script.
(function () {
  "use strict";
  if (typeof window.Chart === "undefined") return;
  var palette = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c"];
  document.querySelectorAll("canvas[data-chart-for]").forEach(function (canvas) {
    var table = document.getElementById(canvas.getAttribute("data-chart-for"));
    if (!table) return;
    var headers = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
    var rows = Array.prototype.map.call(table.querySelectorAll("tbody tr"), function (tr) {
      return Array.prototype.map.call(tr.children, function (cell) { return cell.textContent.trim(); });
    });
    var datasets = headers.slice(1).map(function (label, i) {
      return {
        label: label,
        data: rows.map(function (row) { return Number(row[i + 1].replace(/[^0-9.-]/g, "")) || 0; }),
        borderColor: palette[i % palette.length],
        backgroundColor: palette[i % palette.length],
        cubicInterpolationMode: "monotone",
        borderDash: i === 0 ? [6, 4] : [],
        borderWidth: i === 0 ? 1.5 : 2,
        pointRadius: rows.length > 40 ? 0 : 2,
      };
    });
    new window.Chart(canvas, {
      type: canvas.getAttribute("data-chart-type") || "line",
      data: { labels: rows.map(function (row) { return row[0]; }), datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  });
})();
