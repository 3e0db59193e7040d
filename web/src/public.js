// The public community map (/): only what the public release policy allows — generalised
// points and counts from the public endpoints — with filters, a trend per area and
// "what happened near here in the last 30 days".
import { cellToParent, getResolution } from "h3-js";
import {
  CATEGORY_COLOURS, HEX_FILL, addBoundaries, api, count, createMap, el, errorText, has, hexagons,
  monthRange, query, settled, viewportPoints, whenLoaded,
} from "./common.js";
// Chart.js is loaded on first use (a chart is drawn only for an area), not with the map.
const charts = () => import("./charts.js");
import { filterPanel } from "./filters.js";

const POINT_ZOOM = 12;
const TILE_POINT_ZOOM = 13;
const TILES = "/api/v1/tiles/incidents/{z}/{x}/{y}.mvt";
const NEAR_DEGREES = 0.005; // about 550 m north-south
const side = document.getElementById("side");
const ready = (value) => (document.body.dataset.ready = value);

async function main() {
  ready("0");
  const map = createMap("map");
  const boundaries = api("/api/v1/jurisdictions");
  // The public's vector tiles (generalised points from zoom 13, suppressed hexagon
  // counts below; cached for a minute) draw the map without waiting for any aggregate;
  // the counts by month (time range, total) are asked for once the tiles are drawn.
  const tiles = await has("GET", TILES);
  const counts = () => api("/api/v1/aggregates?by=month");
  const early = tiles ? null : counts();
  await whenLoaded(map);
  await addBoundaries(map, { fetched: boundaries });
  const pointZoom = tiles ? TILE_POINT_ZOOM : POINT_ZOOM;
  if (tiles) {
    map.addSource("incidents", { type: "vector", tiles: [location.origin + TILES], minzoom: 0, maxzoom: 14 });
  } else {
    map.addSource("hex", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addSource("points", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  }
  const hexSource = tiles ? { source: "incidents", "source-layer": "hexagons" } : { source: "hex" };
  const pointSource = tiles ? { source: "incidents", "source-layer": "incidents" } : { source: "points" };
  map.addLayer({ id: "hex", type: "fill", ...hexSource, maxzoom: pointZoom, paint: { "fill-color": HEX_FILL, "fill-opacity": 0.7, "fill-outline-color": "#7a4a2a" } });
  map.addLayer({ id: "points", type: "circle", ...pointSource, minzoom: pointZoom, paint: { "circle-radius": 6, "circle-color": ["match", ["get", "crime_against"], ...Object.entries(CATEGORY_COLOURS).flat(), "#666666"], "circle-stroke-width": 1, "circle-stroke-color": "#ffffff" } });
  if (tiles) {
    map.on("moveend", async () => { ready("0"); await settled(map, ["incidents"]); ready("1"); });
    await settled(map, ["incidents"]);
  }

  const byMonth = await (early || counts());
  if (!byMonth.ok) return side.replaceChildren(el("p", { role: "alert" }, errorText(byMonth)));
  const months = monthRange(byMonth.data.cells);
  const total = el("p", { id: "count", class: "count", "aria-live": "polite" });
  const filterHost = el("div");
  side.replaceChildren(
    el("h2", {}, "Filters"), filterHost, el("p", { class: "hint", id: "hex-legend" }, "Hexagons (zoomed out): darker means more incidents; grey means too few to publish. Zoom in for single incidents."), total,
    el("section", { id: "area", "aria-label": "Trend in an area" }, el("h2", {}, "Trend in an area"), el("p", { class: "hint" }, "Select a hexagon on the map to see its monthly trend.")),
    nearForm(map),
    el("section", { id: "alerts", "aria-label": "Alerts" }, el("h2", {}, "Alerts"), el("p", { class: "hint" }, "Subscriptions to alerts for your neighbourhood will be offered here.")),
    el("section", { id: "tips", "aria-label": "Tips" }, el("h2", {}, "Send a tip"), el("p", { class: "hint" }, "Anonymous tips to the agencies will be taken here.")),
    el("p", {}, el("a", { href: "/methodology" }, "How this map is made: methodology and data quality")));
  const filters = filterPanel(filterHost, { months, onChange: refresh });
  const showTotal = (agg) => {
    total.textContent = agg.ok ? `${count(agg.data.total)} incidents published` : errorText(agg);
    total.dataset.total = agg.ok ? agg.data.total : "";
  };

  const loadPoints = tiles ? async () => {} : viewportPoints(map, "points", { minZoom: POINT_ZOOM - 0.5, params: () => filters.params() });
  async function refresh() {
    ready("0");
    const params = filters.params();
    if (params.empty) {
      total.textContent = "0 incidents";
      total.dataset.total = "0";
      if (!tiles) {
        map.getSource("hex").setData({ type: "FeatureCollection", features: [] });
        map.getSource("points").setData({ type: "FeatureCollection", features: [] });
      }
    } else {
      delete params.empty;
      if (tiles) {
        map.getSource("incidents").setTiles([`${location.origin}${TILES}?${query(params)}`]);
        api(`/api/v1/aggregates?${query(params)}`).then(showTotal);
      } else {
        const [hex] = await Promise.all([api(`/api/v1/aggregates?${query({ ...params, by: "h3_7" })}`), loadPoints({ ...params })]);
        showTotal(hex);
        map.getSource("hex").setData(hexagons(hex.ok ? hex.data.cells : []));
      }
    }
    await settled(map, tiles ? ["incidents"] : ["hex", "points"]);
    ready("1");
  }

  // The trend of a hexagon: its resolution-7 cell (the resolution every published count
  // is released at), counted by month when one is selected, not before.
  map.on("click", "hex", async (event) => {
    const h3 = event.features[0].properties.h3;
    const cell = getResolution(h3) > 7 ? cellToParent(h3, 7) : h3;
    const canvas = el("canvas", { id: "area-chart", role: "img", "aria-label": "Incidents per month in the selected area" });
    const area = document.getElementById("area");
    area.replaceChildren(el("h2", {}, "Trend in an area"), el("p", {}, `Area ${cell} (about 5 km²)`), el("p", { class: "hint" }, "Loading…"));
    const params = filters.params();
    delete params.empty;
    const trend = await api(`/api/v1/aggregates?${query({ ...params, by: ["h3_7", "month"] })}`);
    const mine = trend.ok ? trend.data.cells.filter((c) => c.key[0] === cell) : [];
    area.replaceChildren(el("h2", {}, "Trend in an area"), el("p", {}, `Area ${cell} (about 5 km²)`), el("div", { class: "chart" }, canvas));
    const { monthPoints, trendChart } = await charts();
    trendChart(canvas, monthPoints(filters.months(), mine));
  });
  if (tiles) {
    showTotal(byMonth);
    ready("1");
    return;
  }
  await refresh();
}

/** "What happened near here in the last 30 days": a point from the map or coordinates. */
function nearForm(map) {
  const input = el("input", { id: "near-where", placeholder: "45.45, -122.60", autocomplete: "off" });
  const pick = el("button", { type: "button", id: "near-pick" }, "Pick on the map");
  const out = el("div", { id: "near-result", "aria-live": "polite" });
  const form = el("form", { id: "near", "aria-label": "Near a place" },
    el("h2", {}, "Near a place, last 30 days"),
    el("label", { for: "near-where" }, "Coordinates (latitude, longitude)"), input,
    el("div", { class: "row" }, el("button", { type: "submit" }, "Show"), pick), out);
  const show = async (lat, lon) => {
    const now = new Date();
    const since = new Date(now.getTime() - 30 * 86400000);
    const bbox = [lon - NEAR_DEGREES * 1.4, lat - NEAR_DEGREES, lon + NEAR_DEGREES * 1.4, lat + NEAR_DEGREES].map((v) => v.toFixed(6)).join(",");
    const result = await api(`/api/v1/aggregates?${query({ by: "crime_against", bbox, since: since.toISOString(), until: now.toISOString() })}`);
    if (!result.ok) return out.replaceChildren(el("p", { role: "alert" }, errorText(result)));
    out.replaceChildren(el("p", {}, `${count(result.data.total)} incidents published within about 500 m in the last 30 days`),
      el("ul", {}, result.data.cells.map((c) => el("li", {}, `${c.key[0] ?? "other"}: ${count(c.count)}`))));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const [lat, lon] = input.value.split(",").map(Number);
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) return (out.textContent = "Give a latitude and a longitude, e.g. 45.45, -122.60");
    show(lat, lon);
  });
  pick.addEventListener("click", () => {
    map.getCanvas().style.cursor = "crosshair";
    map.once("click", (event) => {
      map.getCanvas().style.cursor = "";
      input.value = `${event.lngLat.lat.toFixed(5)}, ${event.lngLat.lng.toFixed(5)}`;
      show(event.lngLat.lat, event.lngLat.lng);
    });
  });
  return form;
}

main();
