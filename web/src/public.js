// The public community map (/): only what the public release policy allows — generalised
// points and counts from the public endpoints — with filters, a trend per area and
// "what happened near here in the last 30 days".
import { cellToParent, getResolution } from "h3-js";
import {
  CATEGORY_COLOURS, HEX_FILL, addBoundaries, api, config, count, createMap, el, errorText, has,
  mapRefresher, monthRange, openingView, presentOffences, query, settled, viewportPoints, whenStyled,
} from "./common.js";
// Chart.js is loaded on first use (a chart is drawn only for an area), not with the map.
const charts = () => import("./charts.js");
import { filterPanel } from "./filters.js";

const POINT_ZOOM = 12;
const TILE_POINT_ZOOM = 13;
// A point tile over the server's budget (5,000 records) carries hexagons instead, at any
// zoom: the hexagon layer draws whatever the tiles hold, the points layer the points, and
// tiles are asked for up to zoom 18 so that zooming in brings the points back.
const TILE_MAX_ZOOM = 18;
const TILES = "/api/v1/tiles/incidents/{z}/{x}/{y}.mvt";
const NEAR_DEGREES = 0.005; // about 550 m north-south
const side = document.getElementById("side");
const ready = (value) => (document.body.dataset.ready = value);

async function main() {
  ready("0");
  const boundaries = api("/api/v1/jurisdictions");
  // The public's vector tiles (generalised points from zoom 13, suppressed hexagon
  // counts below; cached for a minute) draw the map without waiting for any aggregate;
  // the counts by month (time range, total) are asked for once the tiles are drawn.
  const tiles = await has("GET", TILES);
  const counts = () => api("/api/v1/aggregates?by=month");
  const early = tiles ? null : counts();
  // The map opens on the jurisdictions: a default view's tiles would be asked for first.
  const opening = await boundaries;
  const map = createMap("map", openingView(opening.ok ? opening.data.features : []));
  await whenStyled(map);
  const boundaryFeatures = await addBoundaries(map, { fit: false, fetched: boundaries });
  const pointZoom = tiles ? TILE_POINT_ZOOM : POINT_ZOOM;
  if (tiles) {
    map.addSource("incidents", { type: "vector", tiles: [location.origin + TILES], minzoom: 0, maxzoom: TILE_MAX_ZOOM });
  } else {
    map.addSource("hex", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addSource("points", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  }
  const hexSource = tiles ? { source: "incidents", "source-layer": "hexagons" } : { source: "hex" };
  const pointSource = tiles ? { source: "incidents", "source-layer": "incidents" } : { source: "points" };
  map.addLayer({ id: "hex", type: "fill", ...hexSource, ...(tiles ? {} : { maxzoom: pointZoom }), paint: { "fill-color": HEX_FILL, "fill-opacity": 0.7, "fill-outline-color": "#7a4a2a" } });
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
    el("section", { id: "area", "aria-label": "Trend in an area" }, el("h2", {}, "Trend in an area"), el("p", { class: "hint" }, "Choose a neighbourhood or area by name, or select a hexagon on the map, to see its monthly trend.")),
    nearForm(map),
    el("section", { id: "alerts", "aria-label": "Alerts" }, el("h2", {}, "Alerts"), el("p", { class: "hint" }, "Subscriptions to alerts for your neighbourhood will be offered here.")),
    el("section", { id: "tips", "aria-label": "Tips" }, el("h2", {}, "Send a tip"), el("p", { class: "hint" }, "Anonymous tips to the agencies will be taken here.")),
    el("p", {}, el("a", { href: "/methodology" }, "How this map is made: methodology and data quality")));
  const filters = filterPanel(filterHost, { months, onChange: () => refresh(), offenceTypes: config().offence_types || [], present: presentOffences });
  namedAreas(map, boundaryFeatures, filters);
  const showTotal = (agg) => {
    total.textContent = agg.ok ? `${count(agg.data.total)} incidents published` : errorText(agg);
    total.dataset.total = agg.ok ? agg.data.total : "";
  };

  const loadPoints = tiles ? async () => {} : viewportPoints(map, "points", { minZoom: POINT_ZOOM - 0.5, params: () => filters.params() });
  const refresh = mapRefresher(map, { tiles, tilePath: TILES, params: () => filters.params(), showTotal, loadPoints });

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

/**
 * Trends per named place: each agency's jurisdiction and each area the public may see
 * (neighbourhoods, districts: the OGC collections), chosen by name. The place is
 * outlined on the map and its incidents counted by month (the public's aggregates, so
 * suppressed as every published count).
 */
async function namedAreas(map, jurisdictions, filters) {
  const section = document.getElementById("area");
  const select = el("select", { id: "area-name" }, el("option", { value: "" }, "Choose a place"));
  const places = new Map(); // value → {label, params, feature}
  const add = (group, value, label, params, feature) => {
    places.set(value, { label, params, feature });
    group.append(el("option", { value }, label));
  };
  const agencies = el("optgroup", { label: "Agency areas (jurisdictions)" });
  for (const f of jurisdictions) {
    const id = f.properties.agency_id;
    if (!places.has(`j:${id}`)) add(agencies, `j:${id}`, f.properties.name || id, { jurisdiction: id }, f);
  }
  if (agencies.children.length) select.append(agencies);
  if (await has("GET", "/api/v1/ogc/collections")) {
    const result = await api("/api/v1/ogc/collections");
    for (const c of result.ok ? (result.data.collections || []).filter((x) => x.id !== "incidents") : []) {
      const items = await api(`/api/v1/ogc/collections/${encodeURIComponent(c.id)}/items?limit=1000`);
      const group = el("optgroup", { label: c.title || c.id });
      for (const f of items.ok ? items.data.features : []) {
        const p = f.properties || {};
        if (p.agency_id && p.layer && p.name) add(group, `a:${p.agency_id}/${p.layer}:${p.name}`, p.name, { area: `${p.agency_id}/${p.layer}:${p.name}` }, f);
      }
      if (group.children.length) select.append(group);
    }
  }
  map.addSource("area-selected", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "area-selected-line", type: "line", source: "area-selected", paint: { "line-color": "#000000", "line-width": 3 } });
  const result = el("div", { id: "area-trend", "aria-live": "polite" });
  section.append(el("label", { for: "area-name" }, "Neighbourhood or area"), select, result);
  select.addEventListener("change", async () => {
    const place = places.get(select.value);
    if (!place) {
      map.getSource("area-selected").setData({ type: "FeatureCollection", features: [] });
      return result.replaceChildren();
    }
    document.body.dataset.trend = "0";
    map.getSource("area-selected").setData({ type: "FeatureCollection", features: [place.feature] });
    const params = filters.params();
    delete params.empty;
    const trend = await api(`/api/v1/aggregates?${query({ ...params, ...place.params, by: "month" })}`);
    if (!trend.ok) {
      result.replaceChildren(el("p", { role: "alert" }, errorText(trend)));
    } else {
      const canvas = el("canvas", { id: "area-name-chart", role: "img", "aria-label": `Incidents per month in ${place.label}` });
      const points = (await charts()).monthPoints(filters.months(), trend.data.cells);
      result.replaceChildren(
        el("p", { id: "area-name-count", "data-total": trend.data.total }, `${count(trend.data.total)} incidents published in ${place.label}`),
        el("div", { class: "chart" }, canvas),
        el("table", { class: "figures" }, el("caption", {}, `Incidents per month in ${place.label}`),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Month"), el("th", { scope: "col" }, "Incidents"))),
          el("tbody", {}, points.map((p) => el("tr", {}, el("td", {}, p.label), el("td", {}, p.value === null ? "too few to show" : count(p.value)))))));
      (await charts()).trendChart(canvas, points);
    }
    document.body.dataset.trend = "1";
  });
}

/**
 * "What happened near here in the last 30 days": a point from a street address (looked up
 * in the agencies' address points, GET /api/v1/places, never in incidents), my location,
 * the map or typed coordinates. The box counted (about 550 m each way) is outlined on the
 * map and the map moves to it; the count is a public aggregate read.
 */
function nearForm(map) {
  const input = el("input", { id: "near-where", placeholder: "312 SE 1st Ave, or 45.45, -122.60", autocomplete: "street-address" });
  const pick = el("button", { type: "button", id: "near-pick" }, "Pick on the map");
  const mine = navigator.geolocation ? el("button", { type: "button", id: "near-me" }, "Use my location") : null;
  const out = el("div", { id: "near-result", "aria-live": "polite" });
  const form = el("form", { id: "near", "aria-label": "Near a place" },
    el("h2", {}, "Near a place, last 30 days"),
    el("label", { for: "near-where" }, "Street address or coordinates (latitude, longitude)"), input,
    el("p", { class: "hint" }, "Addresses are looked up in the agencies' address lists, not in crime reports."),
    el("div", { class: "row" }, el("button", { type: "submit" }, "Show"), mine, pick), out);
  map.addSource("near", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "near-line", type: "line", source: "near", paint: { "line-color": "#000000", "line-width": 2, "line-dasharray": [2, 1] } });
  const show = async (lat, lon, label = `${lat.toFixed(4)}, ${lon.toFixed(4)}`) => {
    const now = new Date();
    const since = new Date(now.getTime() - 30 * 86400000);
    const [w, s, e, n] = [lon - NEAR_DEGREES * 1.4, lat - NEAR_DEGREES, lon + NEAR_DEGREES * 1.4, lat + NEAR_DEGREES];
    const bbox = [w, s, e, n].map((v) => v.toFixed(6)).join(",");
    out.dataset.bbox = bbox;
    map.getSource("near").setData({ type: "Feature", properties: { lat, lon }, geometry: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] } });
    map.fitBounds([[w, s], [e, n]], { padding: 40, maxZoom: 15, duration: 0 });
    const result = await api(`/api/v1/aggregates?${query({ by: "crime_against", bbox, since: since.toISOString(), until: now.toISOString() })}`);
    if (!result.ok) return out.replaceChildren(el("p", { role: "alert" }, errorText(result)));
    // A category with fewer incidents than the public threshold is withheld (count null):
    // it says "fewer than N", and the total counts only what is published.
    const { total, threshold, complete, cells } = result.data;
    const few = `fewer than ${threshold ?? "a few"}`;
    out.replaceChildren(el("p", { id: "near-count", "data-total": total }, `${count(total)} incidents published within about 500 m of ${label} in the last 30 days${complete === false ? ", besides the categories with too few to publish" : ""}`),
      el("ul", {}, cells.map((c) => el("li", {}, `${c.key[0] ?? "other"}: ${c.count == null ? few : count(c.count)}`))));
  };
  const HOW = { address: "", interpolated: " (between listed numbers)", nearest: " (nearest listed number)", street: " (middle of the street)" };
  const lookUp = async (text) => {
    out.textContent = "Looking the address up…";
    const result = await api(`/api/v1/places?${query({ q: text, limit: 5 })}`);
    if (!result.ok) return out.replaceChildren(el("p", { role: "alert" }, errorText(result)));
    const { places, addresses_loaded: loaded } = result.data;
    if (!places.length) {
      return out.replaceChildren(el("p", { role: "alert", id: "near-none" }, loaded
        ? `No address matches “${text}”: check the street name, or pick a place on the map.`
        : "This map has no address list loaded: use your location, pick a place on the map or type its coordinates."));
    }
    // One place of the number asked (stored or interpolated): straight to it; else a choice.
    const found = places.filter((p) => p.match === "address" || p.match === "interpolated");
    const only = places.length === 1 ? places[0] : found.length === 1 ? found[0] : null;
    if (only) return show(only.lat, only.lon, only.label);
    out.replaceChildren(el("p", {}, "Which one?"), el("ul", { id: "near-places" }, places.map((p) => el("li", {},
      el("button", { type: "button", onclick: () => show(p.lat, p.lon, p.label) }, `${p.label}${HOW[p.match] ?? ""}`)))));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    const coords = text.match(/^(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)$/);
    if (coords) {
      const [lat, lon] = [Number(coords[1]), Number(coords[2])];
      if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return (out.textContent = "Give a latitude and a longitude, e.g. 45.45, -122.60");
      return show(lat, lon);
    }
    if (text.length < 3) return (out.textContent = "Type a street address (e.g. 312 SE 1st Ave) or a latitude and a longitude (45.45, -122.60).");
    lookUp(text);
  });
  mine?.addEventListener("click", () => {
    out.textContent = "Finding your location…";
    navigator.geolocation.getCurrentPosition((p) => {
      input.value = `${p.coords.latitude.toFixed(5)}, ${p.coords.longitude.toFixed(5)}`;
      show(p.coords.latitude, p.coords.longitude);
    }, () => (out.textContent = "Your location is not available: pick a place on the map or type its coordinates."), { timeout: 10000, maximumAge: 60000 });
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
