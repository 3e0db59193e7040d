// Charts with Chart.js (a maintained library; no hand-drawn SVG).
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController,
  LineElement, PointElement, Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Tooltip, Legend);
Chart.defaults.animation = false;
Chart.defaults.color = "#222222";

const charts = new WeakMap();

/** Draw (or redraw) a monthly trend line in `canvas` from [{label, value}]. */
export function trendChart(canvas, points, label = "Incidents per month") {
  charts.get(canvas)?.destroy();
  const chart = new Chart(canvas, {
    type: "line",
    data: {
      labels: points.map((p) => p.label),
      datasets: [{ label, data: points.map((p) => p.value), borderColor: "#0072B2", backgroundColor: "#0072B2", spanGaps: true }],
    },
    options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } }, plugins: { legend: { display: false } } },
  });
  charts.set(canvas, chart);
  return chart;
}

/** Turn month aggregate cells into chart points over `months` (null: too few to show). */
export function monthPoints(months, cells) {
  const byMonth = new Map(cells.map((c) => [c.key[c.key.length - 1].slice(0, 7), c.count]));
  return months.map((m) => ({ label: m, value: byMonth.has(m) ? byMonth.get(m) : 0 }));
}
