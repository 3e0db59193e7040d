// The methodology page: which agencies contribute and how current each feed is, from the
// public counts (the rest of the page is static text).
import { api, count, el } from "./common.js";

async function main() {
  const host = document.getElementById("feeds");
  const result = await api("/api/v1/aggregates?by=agency&by=month");
  if (!result.ok) return;
  const feeds = new Map();
  for (const cell of result.data.cells) {
    const [agency, month] = cell.key;
    const feed = feeds.get(agency) || { total: 0, latest: "" };
    feed.total += cell.count || 0;
    if (month > feed.latest) feed.latest = month;
    feeds.set(agency, feed);
  }
  host.replaceChildren(el("table", {}, el("caption", {}, "Contributing agencies"),
    el("thead", {}, el("tr", {}, ["Agency", "Incidents published", "Latest month"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, [...feeds].sort().map(([agency, f]) => el("tr", {}, el("td", {}, agency), el("td", {}, count(f.total)), el("td", {}, f.latest.slice(0, 7)))))));
  document.body.dataset.ready = "1";
}

main();
