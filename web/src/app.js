// The analyst workspace (/app): every granted agency on one map, filters, detail panel,
// area counts and trend, and the layers of the other services where the server has them.
import {
  CATEGORY_COLOURS, HEX_FILL, PALETTE, addBoundaries, api, circle, config, count, createMap, currentUser, el,
  errorText, has, incidentsGeoJSON, mapRefresher, presentOffences, settled, viewportPoints, monthRange, query,
  openingView, signInForm, userBar, whenStyled, liveStream,
} from "./common.js";
// Chart.js is loaded on first use (a chart is drawn only for an area), not with the map.
const charts = () => import("./charts.js");
import { bulletinsPanel } from "./bulletins.js";
import { filterPanel } from "./filters.js";

const POINT_ZOOM = 12;
// The vector tiles carry single incidents from zoom 13 (layer "incidents") and hexagons
// below it (layer "hexagons"; docs/api.md "Vector tiles").
const TILE_POINT_ZOOM = 13;
// A point tile over the server's budget (5,000 records) carries hexagons instead, at any
// zoom: the hexagon layer draws whatever the tiles hold, the points layer the points, and
// tiles are asked for up to zoom 18 so that zooming in brings the points back.
const TILE_MAX_ZOOM = 18;
const TILES = "/api/v1/tiles/incidents/{z}/{x}/{y}.mvt";
const ANALYSES = [["kde", "Kernel density (KDE)"], ["hotspots", "Gi* hot spots"], ["emerging", "Emerging hot spots"], ["nearrepeat", "Near-repeat zones (Knox)"], ["series", "Series"]];
const ANALYSIS = "/api/v1/analysis/{name}";
const side = document.getElementById("side");
const ready = (value) => (document.body.dataset.ready = value);

async function main() {
  ready("0");
  const me = await currentUser();
  if (me) start(me);
  else signInForm(side, start);
}

async function start(me) {
  document.getElementById("user").replaceChildren(userBar(me));
  // The first draw waits on nothing but the map, the boundaries and the tiles in view:
  // the hexagons of the overview come from tiles (each tile one governed read of its
  // cells), not from an aggregate over the whole store. The counts by agency and month
  // (time range, agencies, the total) are asked for at the same time, alongside the
  // tiles (the server runs one process per core), and fill the side panel when they
  // answer; they never hold up the map (issue #12, 2 s at 1 M incidents).
  const boundaries = api("/api/v1/jurisdictions");
  const panelCounts = api("/api/v1/aggregates?by=month&by=agency");
  const tiles = await has("GET", TILES);
  // The map opens on the jurisdictions: a default view's tiles would be asked for first.
  const opening = await boundaries;
  const map = createMap("map", openingView(opening.ok ? opening.data.features : []));
  await whenStyled(map);
  const boundaryFeatures = await addBoundaries(map, { fit: false, fetched: boundaries });
  const known = [...new Set(boundaryFeatures.map((f) => f.properties.agency_id))].sort();
  const colourOf = (list) => ["match", ["get", "agency_id"], ...list.flatMap((a, i) => [a, PALETTE[i % PALETTE.length]]), "#666666"];
  let agencies = known;
  const categoryColour = ["match", ["get", "crime_against"], ...Object.entries(CATEGORY_COLOURS).flat(), "#666666"];
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
  map.addLayer({ id: "points", type: "circle", ...pointSource, minzoom: pointZoom, paint: { "circle-radius": 5, "circle-color": colourOf(agencies), "circle-stroke-width": 1, "circle-stroke-color": "#ffffff" } });
  if (tiles) {
    map.on("moveend", async () => { ready("0"); await settled(map, ["incidents"]); ready("1"); });
    await settled(map, ["incidents"]);
    ready("1"); // the overview is drawn: the map is interactive
  }

  const byMonth = await panelCounts;
  if (!byMonth.ok) return side.replaceChildren(el("p", { role: "alert" }, errorText(byMonth)));
  const months = monthRange(byMonth.data.cells);
  agencies = [...new Set(byMonth.data.cells.map((c) => c.key[1]))].sort();
  const agencyColour = colourOf(agencies);
  map.setPaintProperty("points", "circle-color", agencyColour);
  const colourBy = el("select", { id: "colour-by" }, el("option", { value: "agency" }, "Agency"), el("option", { value: "category" }, "Crime against"));
  const total = el("p", { id: "count", class: "count", "aria-live": "polite" });
  const legend = el("ul", { class: "legend", "aria-label": "Legend" });
  const filterHost = el("div");
  side.replaceChildren(
    el("h2", {}, "Filters"), filterHost,
    el("label", { for: "colour-by" }, "Colour points by"), colourBy, legend, el("p", { class: "hint", id: "hex-legend" }, "Hexagons (zoomed out): darker means more incidents; grey means too few to publish. Zoom in for single incidents."), total,
    el("div", { id: "area-tools" }), el("div", { id: "boundary-layers" }), el("div", { id: "layers" }), el("div", { id: "bulletins" }), el("div", { id: "live" }));
  const filters = filterPanel(filterHost, { months, agencies, onChange: () => refresh(), offenceTypes: config().offence_types || [], present: presentOffences });
  // The area filter (an area of a layer one may read), filled by boundaryLayers().
  const areaSelect = el("select", { id: "f-area" }, el("option", { value: "" }, "All areas"));
  // The jurisdiction filter: incidents inside an agency's jurisdiction, whoever owns them
  // (a county analyst looking at a city, a city at the transit lines crossing it).
  const jurisdictionSelect = el("select", { id: "f-jurisdiction" }, el("option", { value: "" }, "All jurisdictions"),
    known.map((a) => el("option", { value: a }, a)));
  filterHost.append(el("label", { for: "f-jurisdiction" }, "Jurisdiction"), jurisdictionSelect, el("label", { for: "f-area" }, "Area"), areaSelect);
  for (const select of [areaSelect, jurisdictionSelect]) select.addEventListener("change", () => refresh());
  const withoutPlace = filters.params;
  filters.params = () => ({
    ...withoutPlace(),
    ...(jurisdictionSelect.value ? { jurisdiction: jurisdictionSelect.value } : {}),
    ...(areaSelect.value ? { area: areaSelect.value } : {}),
  });
  const truncated = el("p", { id: "points-note", class: "hint", "aria-live": "polite" });
  total.after(truncated);

  // Points are read for the view only, from zoom POINT_ZOOM - 0.5 (just before they show).
  // With tiles MapLibre fetches what a view needs; the page says when they are drawn.
  const loadPoints = tiles ? async () => {} : viewportPoints(map, "points", {
    minZoom: POINT_ZOOM - 0.5,
    params: () => filters.params(),
    onLoaded: (data) => (truncated.textContent = data.truncated ? `Showing the first ${data.features.length.toLocaleString("en")} incidents in view: zoom in for all.` : ""),
  });

  const showLegend = () => {
    const entries = colourBy.value === "agency" ? agencies.map((a, i) => [a, PALETTE[i % PALETTE.length]]) : Object.entries(CATEGORY_COLOURS);
    legend.replaceChildren(...entries.map(([name, colour]) => el("li", {}, el("span", { class: "swatch", style: { background: colour } }), name)));
  };
  colourBy.addEventListener("change", () => {
    map.setPaintProperty("points", "circle-color", colourBy.value === "agency" ? agencyColour : categoryColour);
    showLegend();
  });
  showLegend();

  const showTotal = (agg) => {
    total.textContent = agg.ok ? `${count(agg.data.total)} incidents${agg.data.complete ? "" : " (some counts withheld)"}` : errorText(agg);
    total.dataset.total = agg.ok ? agg.data.total : "";
  };

  const refresh = mapRefresher(map, { tiles, tilePath: TILES, params: () => filters.params(), showTotal, loadPoints });

  // Several incidents at one place (a duplicate reported by two agencies, a block's
  // generalised point): the first opens, the others are offered in the panel.
  map.on("click", "points", (event) => {
    const ids = [...new Set(event.features.map((f) => f.properties.id))];
    showDetail(ids[0], ids.slice(1));
  });
  map.on("mouseenter", "points", () => (map.getCanvas().style.cursor = "pointer"));
  map.on("mouseleave", "points", () => (map.getCanvas().style.cursor = ""));
  areaTools(map, filters);
  boundaryLayers(map, boundaryFeatures, areaSelect);
  analysisLayers(map, filters);
  // The live stream refreshes the bulletins panel once it is filled.
  liveUpdates(map, tiles, bulletinsPanel(document.getElementById("bulletins"), me.user));
  if (tiles) {
    // The whole store with no filter: the total of the counts by agency and month.
    showTotal({ ok: true, data: { total: byMonth.data.total, complete: byMonth.data.complete } });
    document.body.dataset.panel = "1";
    return;
  }
  await refresh();
  document.body.dataset.panel = "1";
}

/** Boundary layers: jurisdictions (drawn from the start) and the area layers one may read. */
async function boundaryLayers(map, jurisdictions, areaSelect) {
  const host = document.getElementById("boundary-layers");
  host.append(el("h2", {}, "Boundaries"));
  const toggle = (id, label, layers, checked) => {
    const box = el("input", { type: "checkbox", id, checked });
    box.addEventListener("change", () => {
      for (const layer of layers()) map.setLayoutProperty(layer, "visibility", box.checked ? "visible" : "none");
    });
    host.append(el("label", { class: "check", for: id }, box, ` ${label}`));
  };
  toggle("b-jurisdictions", `Jurisdictions (${jurisdictions.length})`, () => ["boundaries-fill", "boundaries-line"], true);
  if (!(await has("GET", "/api/v1/ogc/collections"))) return;
  const result = await api("/api/v1/ogc/collections");
  const layers = result.ok ? (result.data.collections || []).filter((c) => c.id !== "incidents") : [];
  for (const collection of layers) {
    const id = `areas-${collection.id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const items = await api(`/api/v1/ogc/collections/${encodeURIComponent(collection.id)}/items?limit=1000`);
    const data = items.ok ? items.data : { type: "FeatureCollection", features: [] };
    map.addSource(id, { type: "geojson", data });
    map.addLayer({ id: `${id}-line`, type: "line", source: id, layout: { visibility: "none" }, paint: { "line-color": "#6a3d9a", "line-width": 1.5 } });
    toggle(`b-${id}`, collection.title || collection.id, () => [`${id}-line`], false);
    // Each area becomes a choice of the area filter: AGENCY/LAYER:NAME.
    const group = el("optgroup", { label: collection.title || collection.id });
    for (const f of data.features) {
      const p = f.properties || {};
      if (p.agency_id && p.layer && p.name) group.append(el("option", { value: `${p.agency_id}/${p.layer}:${p.name}` }, p.name));
    }
    if (group.children.length) areaSelect.append(group);
  }
}

/** The incident detail panel: only what the viewer is granted, as the API returns it. */
async function showDetail(id, alsoHere = []) {
  const panel = document.getElementById("detail");
  const result = await api(`/api/v1/incidents/${encodeURIComponent(id)}`);
  const close = el("button", { type: "button", class: "close", onclick: () => (panel.hidden = true), "aria-label": "Close the detail panel" }, "×");
  if (!result.ok) {
    panel.replaceChildren(close, el("p", { role: "alert" }, errorText(result)));
  } else {
    const record = result.data.record;
    const rows = Object.entries(record)
      .filter(([, v]) => v !== null && v !== undefined && !(typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length))
      .map(([k, v]) => [el("dt", {}, k.replaceAll("_", " ")), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]);
    const reasons = (result.data.decisions || []).flatMap((d) => d.reasons || []);
    const related = el("div", { id: "detail-related" });
    const past = el("div", { id: "detail-history" });
    const others = alsoHere.length
      ? el("div", { id: "detail-here" }, el("p", {}, `${alsoHere.length} more at this place:`),
        el("ul", {}, alsoHere.map((other) => el("li", {}, el("button", { type: "button", class: "link-button",
          onclick: () => showDetail(other, [id, ...alsoHere.filter((x) => x !== other)]) }, other)))))
      : null;
    panel.replaceChildren(...[close, el("h2", { id: "detail-title" }, record.offence_name || "Incident"), others, el("dl", {}, rows),
      reasons.length ? el("details", {}, el("summary", {}, "Why you see this"), el("ul", {}, reasons.map((r) => el("li", {}, r)))) : null,
      past, related].filter(Boolean));
    history(past, id);
    similar(related, id);
  }
  panel.hidden = false;
  panel.focus();
}

/**
 * The incident's history (its earlier versions, each only as the grant that shows it now
 * shows it) and the duplicates linked to it by the duplicates analysis that one may see.
 */
async function history(host, id) {
  const path = "/api/v1/incidents/{incident_id}/history";
  if (!(await has("GET", path))) return;
  const result = await api(`/api/v1/incidents/${encodeURIComponent(id)}/history`);
  if (!result.ok) return host.replaceChildren(el("p", { class: "hint" }, errorText(result)));
  const { versions, duplicates } = result.data;
  const value = (v) => (v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const version = (v) => el("li", { "data-version": v.version },
    el("strong", {}, `Version ${v.version}`), v.superseded_at ? ` (replaced ${v.superseded_at.slice(0, 16).replace("T", " ")})` : "",
    !v.record
      ? el("p", { class: "hint" }, "Not shown to you: the grant that shows this incident now did not cover this version.")
      : v.changed.length
        ? el("dl", {}, v.changed.map((k) => [el("dt", {}, k.replaceAll("_", " ")), el("dd", {}, value(v.record[k]))]))
        : el("p", { class: "hint" }, "No change in the fields you may see."));
  host.replaceChildren(...[
    el("h3", {}, "History"),
    versions.length
      ? [el("p", { class: "hint" }, "Earlier versions, oldest first: the fields that changed afterwards, as they were."), el("ol", { id: "detail-versions" }, versions.map(version))]
      : el("p", { class: "hint" }, "No earlier version."),
    el("h3", {}, "Linked duplicates"),
    duplicates.length
      ? el("ul", { id: "detail-duplicates" }, duplicates.map((d) => el("li", {},
        el("button", { type: "button", class: "link-button", onclick: () => showDetail(d.id) }, `${d.agency_id}: ${d.id}`),
        ` probability ${d.probability}${Array.isArray(d.reasons) && d.reasons.length ? ` (${d.reasons.join(", ")})` : ""}`)))
      : el("p", { class: "hint" }, "None linked that you may see."),
  ].flat());
  host.dataset.done = "1";
}

/** Incidents most like this one (same offence, near, same way), and the linked duplicates among them. */
async function similar(host, id) {
  const path = "/api/v1/incidents/{incident_id}/similar";
  if (!(await has("GET", path))) return;
  host.replaceChildren(el("h3", {}, "Similar incidents"), el("p", { class: "hint" }, "Looking…"));
  const result = await api(`/api/v1/incidents/${encodeURIComponent(id)}/similar?limit=5`);
  const rows = result.ok ? result.data.results || [] : [];
  host.replaceChildren(el("h3", {}, "Similar incidents"), !result.ok
    ? el("p", { class: "hint" }, errorText(result))
    : result.data.comparable === false
      ? el("p", { class: "hint" }, `Cannot compare: ${result.data.reason}.`)
    : rows.length
      ? el("ul", {}, rows.map((r) => el("li", {}, el("button", { type: "button", class: "link-button", onclick: () => showDetail(r.id) }, `${r.agency_id}: ${r.id}`), ` score ${r.score}${r.reason ? ` (${Array.isArray(r.reason) ? r.reason.join(", ") : r.reason})` : ""}`)))
      : el("p", { class: "hint" }, "None that you may see."));
  host.dataset.done = "1";
}

/** Draw a rectangle on the map → its counts, trend chart, breakdown and an export link. */
function areaTools(map, filters) {
  const host = document.getElementById("area-tools");
  const button = el("button", { type: "button", id: "draw-area", "aria-pressed": "false" }, "Draw an area");
  const result = el("div", { id: "area-result", "aria-live": "polite" });
  host.append(el("h2", {}, "Area"), el("p", { class: "hint" }, "Press the button, then click two opposite corners on the map."), button, result);
  map.addSource("area", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "area-line", type: "line", source: "area", paint: { "line-color": "#000000", "line-width": 2 } });
  let corner = null;
  let drawing = false;
  button.addEventListener("click", () => {
    drawing = !drawing;
    corner = null;
    button.setAttribute("aria-pressed", String(drawing));
    map.getCanvas().style.cursor = drawing ? "crosshair" : "";
  });
  map.on("click", async (event) => {
    if (!drawing) return;
    if (!corner) return (corner = event.lngLat);
    drawing = false;
    button.setAttribute("aria-pressed", "false");
    map.getCanvas().style.cursor = "";
    const [a, b] = [corner, event.lngLat];
    const bbox = [Math.min(a.lng, b.lng), Math.min(a.lat, b.lat), Math.max(a.lng, b.lng), Math.max(a.lat, b.lat)].map((v) => v.toFixed(6));
    const [w, s, e, n] = bbox.map(Number);
    map.getSource("area").setData({ type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] } });
    await areaSummary(result, { ...filters.params(), bbox: bbox.join(",") }, filters.months());
  });
}

async function areaSummary(host, params, months) {
  delete params.empty;
  const [byMonth, byCategory] = await Promise.all([
    api(`/api/v1/aggregates?${query({ ...params, by: "month" })}`),
    api(`/api/v1/aggregates?${query({ ...params, by: "crime_against" })}`),
  ]);
  if (!byMonth.ok) return host.replaceChildren(el("p", { role: "alert" }, errorText(byMonth)));
  const canvas = el("canvas", { id: "area-chart", role: "img", "aria-label": "Incidents per month in the area" });
  const exportLink = (await has("GET", "/api/v1/exports"))
    ? `/api/v1/exports?${query({ ...params, format: "csv" })}`
    : `/api/v1/incidents?${query({ ...params, f: "geojson", limit: 5000 })}`;
  host.replaceChildren(
    el("p", { id: "area-count", class: "count" }, `${count(byMonth.data.total)} incidents in the area`),
    el("div", { class: "chart" }, canvas),
    el("table", {}, el("caption", {}, "By crime against"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Crime against"), el("th", { scope: "col" }, "Count"))),
      el("tbody", {}, byCategory.ok ? byCategory.data.cells.map((c) => el("tr", {}, el("td", {}, c.key[0] ?? "unknown"), el("td", {}, count(c.count)))) : [])),
    el("a", { href: exportLink, download: "crossbeat-area" }, "Export the area's incidents"));
  const { monthPoints, trendChart } = await charts();
  trendChart(canvas, monthPoints(months, byMonth.data.cells));
  await compstat(host, params);
}

/** The CompStat table of the drawn area (the analysis service), where the server has it. */
async function compstat(host, params) {
  if (!(await has("GET", ANALYSIS))) return;
  const { since: _since, until: _until, ...rest } = params; // CompStat picks its own periods
  const result = await api(`/api/v1/analysis/compstat?${query({ ...rest, until: params.until })}`);
  const fmt = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? (Number.isInteger(v) ? v.toLocaleString("en") : v.toFixed(1)) : String(v));
  if (!result.ok) return host.append(el("p", { class: "hint", id: "compstat-note" }, `CompStat: ${errorText(result)}`));
  const rows = (result.data.rows || []).filter((r) => r.current || r.previous);
  host.append(el("table", { id: "compstat" }, el("caption", {}, "CompStat: this period against the one before"),
    el("thead", {}, el("tr", {}, ["Group", "Category", "Period", "Now", "Before", "Change %"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, [r.group, r.category, r.period, r.current, r.previous, r.change_pct].map((v) => el("td", {}, fmt(v))))))));
}

/** Analysis layers from the analysis service (issue #11), where the server has it. */
async function analysisLayers(map, filters) {
  const host = document.getElementById("layers");
  if (!(await has("GET", ANALYSIS))) return;
  const note = el("div", { id: "layer-note", "aria-live": "polite" });
  host.append(el("h2", {}, "Analysis layers"), el("p", { class: "hint" }, "Over the incidents you may see, with the filters above."));
  for (const [name, title] of ANALYSES) {
    const box = el("input", { type: "checkbox", id: `layer-${name}` });
    host.append(el("label", { class: "check", for: `layer-${name}` }, box, ` ${title}`));
    box.addEventListener("change", () => toggleAnalysis(map, filters, name, title, box, note));
  }
  host.append(note);
}

const ANALYSIS_COLOURS = { kde: "#CC79A7", hotspots: "#D55E00", emerging: "#E69F00", nearrepeat: "#56B4E9", series: "#009E73" };
/** What each analysis layer draws, for the legend. */
const ANALYSIS_LEGEND = {
  kde: "Kernel density surface: where incidents concentrate",
  hotspots: "Gi* hot spots: hexagons significantly above the rest",
  emerging: "Emerging hot spots: hexagons getting hotter over time",
  nearrepeat: "Near-repeat zones: around recent incidents, within the distance and days where repeats are more than chance (Knox)",
  series: "Series: members (points) joined in time order (lines), one colour per series",
};
/** The Knox test's significance level for a near-repeat band. */
const KNOX_ALPHA = 0.05;
const SUFFIXES = ["-fill", "-line", "-circle"];

async function toggleAnalysis(map, filters, name, title, box, note) {
  const id = `analysis-${name}`;
  const remove = () => {
    for (const suffix of SUFFIXES) if (map.getLayer(id + suffix)) map.removeLayer(id + suffix);
    if (map.getSource(id)) map.removeSource(id);
  };
  remove();
  layerLegend(map);
  if (!box.checked) return;
  document.body.dataset.layers = "0";
  const params = filters.params();
  delete params.empty;
  const geo = !["nearrepeat", "series"].includes(name);
  note.textContent = `${title}: computing…`;
  const result = await api(`/api/v1/analysis/${name}?${query({ ...params, f: geo ? "geojson" : "json" })}`);
  if (!box.checked) return;
  if (!result.ok) {
    note.textContent = `${title}: ${errorText(result)}`;
  } else {
    let data = result.data;
    let told = null;
    if (name === "series") data = seriesFeatures(result.data);
    if (name === "nearrepeat") [data, told] = await nearRepeatZones(result.data, params);
    if (!box.checked) return;
    if (data?.type === "FeatureCollection") {
      const colour = ANALYSIS_COLOURS[name];
      const byFeature = ["coalesce", ["get", "colour"], colour];
      map.addSource(id, { type: "geojson", data });
      map.addLayer({ id: `${id}-fill`, type: "fill", source: id, filter: ["in", ["geometry-type"], ["literal", ["Polygon", "MultiPolygon"]]], paint: { "fill-color": colour, "fill-opacity": 0.4, "fill-outline-color": "#333333" } });
      map.addLayer({ id: `${id}-line`, type: "line", source: id, filter: ["==", ["geometry-type"], "LineString"], paint: { "line-color": byFeature, "line-width": 2.5 } });
      map.addLayer({ id: `${id}-circle`, type: "circle", source: id, filter: ["==", ["geometry-type"], "Point"], paint: { "circle-radius": 6, "circle-color": byFeature, "circle-stroke-width": 1, "circle-stroke-color": "#ffffff" } });
      note.replaceChildren(told || `${title}: ${data.features.length.toLocaleString("en")} features drawn.`);
      if (name === "nearrepeat") note.append(knoxTable(result.data));
    }
  }
  layerLegend(map);
  document.body.dataset.layers = "1";
}

/** The legend of the analysis layers on the map. */
function layerLegend(map) {
  const host = document.getElementById("layers");
  let legend = document.getElementById("layer-legend");
  if (!legend) {
    legend = el("ul", { id: "layer-legend", class: "legend", "aria-label": "Analysis layers legend" });
    host.append(legend);
  }
  const shown = Object.keys(ANALYSIS_LEGEND).filter((name) => map.getSource(`analysis-${name}`));
  legend.replaceChildren(...shown.map((name) => el("li", { "data-layer": name },
    el("span", { class: "swatch", style: { background: ANALYSIS_COLOURS[name] } }), ANALYSIS_LEGEND[name])));
}

/**
 * Near-repeat zones: the Knox bands where pairs close in space and time are more than
 * chance (p < KNOX_ALPHA, ratio above 1) give a distance and a number of days; each
 * incident of those last days (before the filters' end) gets a zone of that radius.
 * Returns the features and a sentence saying what was drawn.
 */
async function nearRepeatZones(knox, params) {
  const significant = (knox.table || []).filter((r) => typeof r.p === "number" && r.p < KNOX_ALPHA && r.ratio > 1);
  const none = { type: "FeatureCollection", features: [] };
  if (!significant.length) return [none, "Near-repeat: no distance and time band is above chance, so no zones."];
  const metres = Math.max(...significant.map((r) => r.distance_m[1]));
  const days = Math.max(...significant.map((r) => r.days[1]));
  // The window ends at the filters' end, and never after now.
  const end = new Date(Math.min(params.until ? new Date(params.until).getTime() : Infinity, Date.now()));
  const since = new Date(Math.max(end.getTime() - days * 86400000, params.since ? new Date(params.since).getTime() : 0));
  const recent = await incidentsGeoJSON({ ...params, since: since.toISOString(), until: end.toISOString() }, 2000);
  const features = (recent.features || []).map((f) => ({
    type: "Feature", geometry: circle(f.geometry.coordinates, metres), properties: { id: f.properties.id, radius_m: metres, days },
  }));
  const more = recent.truncated ? " (the first 2,000)" : "";
  return [{ type: "FeatureCollection", features },
    `Near-repeat zones: ${features.length.toLocaleString("en")} incidents${more} of the last ${days} days, each with a zone of ${metres.toLocaleString("en")} m where a repeat is more likely than chance.`];
}

/** The members of each series as points, and each series as a line in time order. */
function seriesFeatures(data) {
  const features = [];
  for (const s of data.series || []) {
    const colour = PALETTE[s.series % PALETTE.length];
    const members = Object.values(s.members || {}).flat().filter((m) => m.lon !== null && m.lat !== null);
    members.sort((a, b) => String(a.occurred_from).localeCompare(String(b.occurred_from)));
    for (const m of members) {
      features.push({ type: "Feature", geometry: { type: "Point", coordinates: [m.lon, m.lat] }, properties: { series: s.series, id: m.id, nibrs_code: m.nibrs_code, colour } });
    }
    if (members.length > 1) {
      features.push({ type: "Feature", geometry: { type: "LineString", coordinates: members.map((m) => [m.lon, m.lat]) }, properties: { series: s.series, size: s.size, colour } });
    }
  }
  return { type: "FeatureCollection", features };
}

/** The Knox near-repeat table: where close in space and time is more than chance. */
function knoxTable(data) {
  const rows = data.table || [];
  const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v ?? "–"));
  return el("table", { id: "knox" }, el("caption", {}, "Near-repeat: observed against expected pairs"),
    el("thead", {}, el("tr", {}, ["Metres", "Days", "Observed", "Expected", "Ratio", "p"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, [(r.distance_m || []).join("–"), (r.days || []).join("–"), r.observed, r.expected, r.ratio, r.p].map((v) => el("td", {}, fmt(v)))))));
}

/**
 * Live updates (server-sent events) where the server streams them; bulletin events refresh
 * the bulletins panel (`bulletins`: the promise of its refresh function, or of null).
 */
async function liveUpdates(map, tiles, bulletins) {
  if (!(await has("GET", "/api/v1/live"))) return;
  const host = document.getElementById("live");
  const list = el("ul", { id: "live-list", "aria-live": "polite" });
  host.append(el("h2", {}, "Live"), list);
  let pending = null;
  const reloadTiles = () => {
    clearTimeout(pending); // one reload for a burst of events
    pending = setTimeout(() => { const source = map.getSource("incidents"); source.setTiles(source.tiles); }, 500);
  };
  const onIncident = (event) => {
    const record = JSON.parse(event.data);
    list.prepend(el("li", {}, `${event.type.replace("incident.", "")}: ${record.offence_name || record.nibrs_code || record.id} (${record.agency_id})`));
    // Tiles are "private, no-store" for a signed-in user: setting the same URLs again
    // reloads the tiles in view, so the new or changed incident is drawn.
    if (tiles) return reloadTiles();
    if (record.lat == null) return;
    const source = map.getSource("points");
    const data = source._data?.geojson || source._data || { type: "FeatureCollection", features: [] };
    const features = (data.features || []).filter((f) => f.properties.id !== record.id);
    if (event.type !== "incident.withdrawn") {
      const { lat, lon, ...props } = record;
      features.push({ type: "Feature", geometry: { type: "Point", coordinates: [lon, lat] }, properties: props });
    }
    source.setData({ type: "FeatureCollection", features });
  };
  const refreshBulletins = async () => (await bulletins)?.();
  liveStream({
    "incident.created": onIncident, "incident.updated": onIncident, "incident.withdrawn": onIncident,
    "bulletin.created": refreshBulletins, "bulletin.acknowledged": refreshBulletins,
  });
}

main();
