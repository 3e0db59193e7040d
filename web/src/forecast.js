// Forecasts and patrol plans (/forecast, issue #13): run a forecast on your view of the
// data, see its flagged cells, its model card (backtest scores beside naive counts and
// KDE, accountability figures), plan patrols over it and see each unit's boxes and route.
import {
  PALETTE, addBoundaries, api, config, createMap, currentUser, el, errorText, settled, signInForm, userBar, whenStyled,
} from "./common.js";

const side = document.getElementById("side");
const ready = (value) => (document.body.dataset.ready = value);
const CATEGORIES = { "220": "Burglary", "240": "Motor vehicle theft", "120": "Robbery", "13A": "Aggravated assault", "23F": "Theft from vehicle", "23H": "Other theft", "290": "Vandalism" };
const H3_AREA = { 7: "about 5 km²", 8: "about 0.7 km²", 9: "about 0.1 km²", 10: "about 0.015 km²" };
// The models the server offers, in its order (crossbeat.forecast.service.MODELS, sent in
// the page's configuration): one list, so a model added there appears here unchanged.
const MODELS = config().forecast_models || [];
const empty = () => ({ type: "FeatureCollection", features: [] });
const num = (v, digits = 2) => (v === null || v === undefined || Number.isNaN(v) ? "n/a" : Number(v).toFixed(digits));

async function main() {
  ready("0");
  const me = await currentUser();
  if (me) start(me);
  else signInForm(side, start);
}

/** A square cell of `size` metres around a centre, as a GeoJSON ring (lon/lat). */
function square(lon, lat, size) {
  const dlat = size / 2 / 111320;
  const dlon = size / 2 / (111320 * Math.cos((lat * Math.PI) / 180));
  return [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat], [lon - dlon, lat + dlat], [lon - dlon, lat - dlat]];
}

function field(id, label, input) {
  input.id = id;
  return [el("label", { for: id }, label), input];
}

async function start(me) {
  document.getElementById("user").replaceChildren(userBar(me));
  const map = createMap("map");
  const [byMonth, layers] = await Promise.all([api("/api/v1/aggregates?by=month"), api("/api/v1/ogc/collections"), whenStyled(map)]);
  await addBoundaries(map);
  map.addSource("flagged", { type: "geojson", data: empty() });
  map.addSource("routes", { type: "geojson", data: empty() });
  map.addSource("boxes", { type: "geojson", data: empty() });
  map.addLayer({ id: "flagged", type: "fill", source: "flagged", paint: { "fill-color": "#D55E00", "fill-opacity": ["interpolate", ["linear"], ["get", "share"], 0, 0.25, 1, 0.85], "fill-outline-color": "#7a2a00" } });
  map.addLayer({ id: "routes", type: "line", source: "routes", paint: { "line-color": ["get", "colour"], "line-width": 3 } });
  map.addLayer({ id: "boxes", type: "circle", source: "boxes", paint: { "circle-radius": 6, "circle-color": ["get", "colour"], "circle-stroke-width": 1, "circle-stroke-color": "#ffffff" } });

  // The latest month with data is the default forecast start.
  const months = byMonth.ok ? byMonth.data.cells.map((c) => c.key[0]).sort() : [];
  const last = months.length ? months[months.length - 1] : new Date().toISOString().slice(0, 7);
  const category = el("select", {}, Object.entries(CATEGORIES).map(([code, name]) => el("option", { value: code }, `${name} (${code})`)));
  const model = el("select", {}, MODELS.map((m) => el("option", { value: m, selected: m === "naive" }, m)));
  const startAt = el("input", { type: "date", value: `${last.slice(0, 7)}-01`, required: true });
  const windowDays = el("input", { type: "number", min: "0.1", max: "92", step: "any", value: "7" });
  const cell = el("input", { type: "number", min: "50", max: "2000", value: "250" });
  // Cells: squares of the size above, H3 hexagons of a resolution, or one of the agency's area layers.
  const own = `areas-${me.user.agency}-`;
  const areaLayers = layers.ok ? layers.data.collections.map((c) => c.id).filter((id) => id.startsWith(own)).map((id) => id.slice(own.length)) : [];
  const cellKind = el("select", {}, [
    el("option", { value: "square" }, "Squares (cell size)"),
    ...[7, 8, 9, 10].map((r) => el("option", { value: `h3:${r}` }, `H3 hexagons, resolution ${r} (${H3_AREA[r]})`)),
    ...areaLayers.map((name) => el("option", { value: `area:${name}` }, `Area layer: ${name}`)),
  ]);
  cellKind.addEventListener("change", () => (cell.disabled = cellKind.value !== "square"));
  const fraction = el("input", { type: "number", min: "0.001", max: "0.5", step: "any", value: "0.05" });
  const run = el("button", { type: "submit", id: "run" }, "Forecast");
  const status = el("p", { id: "forecast-status", role: "status", "aria-live": "polite" });
  const form = el("form", { id: "forecast-form" },
    field("category", "Category", category), field("model", "Model", model), field("start", "Window start", startAt),
    field("window", "Window (days)", windowDays), field("cells", "Cells", cellKind), field("cell", "Cell size (m)", cell), field("fraction", "Area flagged (fraction)", fraction), run);
  const cards = el("select", { id: "cards" });
  const card = el("section", { id: "card", "aria-label": "Model card" });
  const plan = el("section", { id: "plan", "aria-label": "Patrol plan" });
  side.replaceChildren(el("h2", {}, "Forecast"), form, status, el("h2", {}, "Model cards"), ...field("cards", "Earlier forecasts", cards), card, plan);

  async function listCards(select) {
    const result = await api("/api/v1/forecasts?limit=50");
    if (!result.ok) return;
    cards.replaceChildren(el("option", { value: "" }, "—"), ...result.data.map((c) => el("option", { value: c.id, selected: c.id === select }, `${c.window_from.slice(0, 10)} ${c.category} ${c.model}`)));
  }

  async function show(data) {
    const size = data.grid.size_m;
    const kind = data.grid.kind || "square";
    const cells = data.forecast.cells;
    const top = Math.max(...cells.map((c) => c.expected), 1e-9);
    // H3 and area-layer cells carry their (clipped) geometry; squares are drawn from centre and size.
    const shapeOf = (c) => c.geometry || { type: "Polygon", coordinates: [square(c.lon, c.lat, size)] };
    map.getSource("flagged").setData({ type: "FeatureCollection", features: cells.map((c) => ({ type: "Feature", properties: { cell: c.cell, id: c.id ?? String(c.cell), kind, expected: c.expected, share: c.expected / top }, geometry: shapeOf(c) })) });
    const described = { square: `cells of ${size} m`, h3: `H3 hexagons (resolution ${data.grid.resolution})`, area: `areas of layer ${data.grid.layer}` }[kind] || "cells";
    map.getSource("routes").setData(empty());
    map.getSource("boxes").setData(empty());
    const models = Object.entries(data.backtest.models);
    const fractions = Object.keys(models[0][1]).filter((k) => k !== "calibration");
    const acc = data.accountability;
    card.replaceChildren(
      el("h2", {}, `Model card: ${data.model}`),
      el("p", {}, `${data.category}, ${data.window_from.slice(0, 16)} to ${data.window_to.slice(0, 16)}; trained ${data.training_from.slice(0, 10)} to ${data.training_to.slice(0, 10)} on ${data.data_snapshot.records} records; ${cells.length} ${described} flagged.`),
      ...choice(data),
      el("table", { id: "backtest" },
        el("caption", {}, `Backtest on the ${data.backtest.windows} windows before (mean per window)`),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "model"), fractions.map((f) => [el("th", { scope: "col" }, `PAI ${f}`), el("th", { scope: "col" }, `hit rate ${f}`)]))),
        el("tbody", {}, models.map(([name, s]) => el("tr", {}, el("th", { scope: "row" }, name), fractions.map((f) => [el("td", {}, num(s[f]?.pai)), el("td", {}, num(s[f]?.hit_rate, 3))]))))),
      el("h3", {}, "Accountability"),
      el("dl", { id: "accountability" },
        el("dt", {}, "Largest share of flagged cells in one neighbourhood"), el("dd", {}, num(acc.concentration?.largest_share, 3)),
        el("dt", {}, "Earlier forecasts compared"), el("dd", {}, String(acc.feedback?.previous_forecasts ?? 0)),
        el("dt", {}, "Feedback-loop figures"), el("dd", { style: "overflow-wrap:anywhere" }, JSON.stringify(acc.feedback ?? {}))),
      planForm(data));
    plan.replaceChildren();
    await settled(map, ["flagged"]);
  }

  // A model chosen among members on earlier windows (counts-selected, borrowed) names its
  // choice; a borrowing model also names what it read besides the category.
  function choice(data) {
    const p = data.params || {};
    const related = data.data_snapshot.related;
    const parts = [];
    if (p.chosen) parts.push(`Chosen before this forecast: ${p.chosen} (most hits over the ${p.windows_scored} windows before it).`);
    if (related) parts.push(`Borrowing from ${related.records} records of ${Object.keys(related.categories).join(", ")}.`);
    return parts.length ? [el("p", { id: "card-choice" }, parts.join(" "))] : [];
  }

  function planForm(data) {
    const units = el("input", { type: "number", min: "1", max: "50", value: "2" });
    const shift = el("input", { type: "datetime-local", value: data.window_from.slice(0, 16) });
    const seed = el("input", { type: "number", value: "1" });
    const go = el("button", { type: "submit", id: "plan-run" }, "Plan patrols");
    const note = el("p", { role: "status", id: "plan-status", "aria-live": "polite" });
    return el("form", { id: "plan-form", onsubmit: async (event) => {
      event.preventDefault();
      note.textContent = "Planning…";
      const offset = data.window_from.slice(19) || "Z";
      const result = await api("/api/v1/patrol-plans", { method: "POST", body: { model_card_id: data.id, units: Number(units.value), shift_start: `${shift.value}:00${offset}`, seed: Number(seed.value) } });
      if (!result.ok) { note.textContent = errorText(result); return; }
      note.textContent = "";
      await showPlan(result.data);
    } }, el("h3", {}, "Patrol plan"), field("units", "Units on shift", units), field("shift", "Shift start", shift), field("seed", "Seed", seed), go, note);
  }

  async function showPlan(p) {
    const boxes = [];
    const routes = [];
    const rows = [];
    // Boxes by H3 name: 64-bit cell numbers lose precision as JavaScript numbers.
    const byName = Object.fromEntries(Object.values(p.boxes).map((b) => [b.h3_9, b]));
    Object.entries(p.assignment_h3).forEach(([unit, beat], i) => {
      const colour = PALETTE[i % PALETTE.length];
      const points = beat.map((c) => byName[c]);
      points.forEach((b, k) => boxes.push({ type: "Feature", properties: { unit, colour, order: k + 1 }, geometry: { type: "Point", coordinates: [b.lon, b.lat] } }));
      if (points.length > 1) routes.push({ type: "Feature", properties: { unit, colour }, geometry: { type: "LineString", coordinates: [...points, points[0]].map((b) => [b.lon, b.lat]) } });
      const stays = p.visits.filter((v) => v.unit === unit);
      rows.push(el("tr", {}, el("th", { scope: "row" }, el("span", { class: "swatch", style: `background:${colour}` }), unit), el("td", {}, String(beat.length)), el("td", {}, String(stays.length)), el("td", {}, num(stays.reduce((t, v) => t + v.end - v.start, 0), 0))));
    });
    map.getSource("boxes").setData({ type: "FeatureCollection", features: boxes });
    map.getSource("routes").setData({ type: "FeatureCollection", features: routes });
    plan.replaceChildren(
      el("h3", {}, "Shift plan"),
      el("p", { id: "routing" }, `Routes: ${p.routing}. Seed ${p.seed}; from model card ${p.model_card_id} (${p.model}).`),
      el("table", { id: "units" }, el("thead", {}, el("tr", {}, ["unit", "boxes", "stays (10–16 min)", "minutes in boxes"].map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows)),
      el("p", {}, p.claimed_by_partners.length ? `${p.claimed_by_partners.length} boxes are in partner agencies' plans for this shift and were left to them.` : "No box of this plan is in a partner agency's plan for this shift."),
      el("button", { type: "button", onclick: () => window.print() }, "Print shift plan"),
      dosageView(p));
    await settled(map, ["boxes", "routes"]);
    ready("plan");
  }

  // The plan's open dosage evaluation: logged minutes against observed/expected per box.
  function dosageView(p) {
    const out = el("div", { id: "dosage", "aria-live": "polite" });
    const go = el("button", { type: "button", id: "dosage-run", onclick: async () => {
      out.textContent = "Evaluating…";
      const result = await api(`/api/v1/patrol-plans/${encodeURIComponent(p.id)}/dosage-evaluation`);
      if (!result.ok) { out.textContent = errorText(result); return; }
      const e = result.data;
      const r = e.result;
      out.replaceChildren(
        el("p", { id: "dosage-summary" }, `Rate ratio (dosed / undosed boxes, observed/expected): ${num(r.rate_ratio)}, 95 % interval ${num(r.ci_low)}–${num(r.ci_high)}, p = ${num(r.p_value, 3)}; ${r.dosed_boxes} dosed and ${r.undosed_boxes} undosed boxes; ${num(e.logged_minutes, 0)} minutes logged of ${num(e.planned_minutes, 0)} planned.`),
        el("p", { class: "hint", id: "dosage-method" }, e.method),
        el("table", { id: "dosage-boxes" },
          el("caption", {}, `Boxes, ${e.window_from.slice(0, 10)} to ${e.window_to.slice(0, 10)} (dosed: at least ${e.threshold_minutes} minutes)`),
          el("thead", {}, el("tr", {}, ["box", "expected", "observed", "minutes", "dosed"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, e.boxes.map((b) => el("tr", {}, el("th", { scope: "row" }, b.h3_9), el("td", {}, num(b.expected)), el("td", {}, String(b.observed)), el("td", {}, num(b.minutes, 0)), el("td", {}, b.dosed ? "yes" : "no"))))));
      ready("dosage");
    } }, "Evaluate dosage");
    return el("section", { "aria-label": "Dosage evaluation" }, el("h3", {}, "Dosage evaluation"), go, out);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    run.disabled = true;
    status.textContent = "Forecasting (fit, backtest)…";
    const body = { category: category.value, model: model.value, start: `${startAt.value}T00:00:00Z`, window_days: Number(windowDays.value), cell_m: Number(cell.value), fraction: Number(fraction.value), cells: cellKind.value };
    const result = await api("/api/v1/forecasts", { method: "POST", body });
    run.disabled = false;
    if (!result.ok) { status.textContent = errorText(result); return; }
    status.textContent = `Forecast stored: model card ${result.data.id}.`;
    await listCards(result.data.id);
    await show(result.data);
    ready("card");
  });
  cards.addEventListener("change", async () => {
    if (!cards.value) return;
    const result = await api(`/api/v1/forecasts/${cards.value}`);
    if (result.ok) { await show(result.data); ready("card"); }
  });
  await listCards(null);
  ready("1");
}

main();
