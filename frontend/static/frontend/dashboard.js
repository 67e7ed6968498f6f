// The utilisation dashboard's charts, from the JSON the page embeds
// (frontend/dashboard_views.py `_charts`): labels are already translated.
(function () {
  "use strict";
  function draw() {
    var node = document.getElementById("dashboard-data");
    if (!node || typeof Chart === "undefined") return;
    var d = JSON.parse(node.textContent);
    var palette = ["#1f4fd1", "#146c43", "#a4161a", "#8a5300", "#6f42c1", "#0e7490", "#be185d", "#4d7c0f"];
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#566173";
    Chart.defaults.maintainAspectRatio = false;
    var reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    if (reduced) Chart.defaults.animation = false;

    function canvas(id) { return document.getElementById(id); }
    var u = d.utilisation;
    if (canvas("chart-utilisation")) {
      var sets = u.machines.map(function (m, i) {
        return { label: m.label, data: m.data, borderColor: palette[i % palette.length],
                 backgroundColor: palette[i % palette.length], tension: 0.25, spanGaps: true, pointRadius: 2 };
      });
      sets.unshift({ label: u.all_label, data: u.all, borderColor: "#16202e", backgroundColor: "#16202e",
                     borderWidth: 3, borderDash: [6, 4], tension: 0.25, spanGaps: true, pointRadius: 0 });
      new Chart(canvas("chart-utilisation"), {
        type: "line", data: { labels: d.periods, datasets: sets },
        options: { interaction: { mode: "index", intersect: false },
                   scales: { y: { beginAtZero: true, title: { display: true, text: d.axis.percent } } },
                   plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } } }
      });
    }
    if (d.organizations && canvas("chart-organizations")) {
      new Chart(canvas("chart-organizations"), {
        type: "bar", data: { labels: d.organizations.labels,
          datasets: [{ label: d.axis.hours, data: d.organizations.data, backgroundColor: "#1f4fd1", borderRadius: 4 }] },
        options: { indexAxis: "y", plugins: { legend: { display: false } },
                   scales: { x: { beginAtZero: true, title: { display: true, text: d.axis.hours } } } }
      });
    }
    if (canvas("chart-no-shows")) {
      var shades = ["#a4161a", "#f0b44c"];
      new Chart(canvas("chart-no-shows"), {
        type: "bar", data: { labels: d.periods, datasets: d.no_shows.series.map(function (s, i) {
          return { label: s.label, data: s.data, backgroundColor: shades[i], borderRadius: 3 };
        }) },
        options: { interaction: { mode: "index", intersect: false },
                   scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: d.axis.count } } },
                   plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } } }
      });
    }
    if (canvas("chart-refused")) {
      var colours = ["#a4161a", "#8a5300", "#566173"];
      new Chart(canvas("chart-refused"), {
        type: "bar", data: { labels: d.periods, datasets: d.refused.series.map(function (s, i) {
          return { label: s.label, data: s.data, backgroundColor: colours[i], borderRadius: 3 };
        }) },
        options: { interaction: { mode: "index", intersect: false },
                   scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: d.axis.count } } },
                   plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } } }
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
