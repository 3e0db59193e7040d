// Shared by every page: configuration, API calls, sign-in, the base map and boundaries.
import maplibregl from "maplibre-gl";
import { cellToBoundary } from "h3-js";

export { maplibregl };

/** Settings the server embedded in the page (base map, version). */
export function config() {
  const node = document.getElementById("cb-config");
  return node ? JSON.parse(node.textContent) : {};
}

/** Build a DOM element: el("button", {class: "x", onclick}, "text", child...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    // Styles through the CSSOM: a style attribute would need 'unsafe-inline' in the CSP.
    // A string ("a: b; c: d") is split into properties; an object is assigned as it is.
    else if (key === "style" && typeof value === "string") {
      for (const rule of value.split(";")) {
        const at = rule.indexOf(":");
        if (at > 0) node.style.setProperty(rule.slice(0, at).trim(), rule.slice(at + 1).trim());
      }
    } else if (key === "style") Object.assign(node.style, value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let csrf = null;

/** Call the API; returns {ok, status, data, headers}. Never throws for an HTTP error. */
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (method !== "GET" && csrf) init.headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, init);
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) data = await response.json();
  else data = await response.text();
  return { ok: response.ok, status: response.status, data, headers: response.headers };
}

/** The message of an API error answer. */
export function errorText(result) {
  const d = result.data;
  if (d && typeof d === "object") return [d.error, ...(d.errors || [])].filter(Boolean).join("; ");
  return `HTTP ${result.status}`;
}

let operations = null;

/**
 * Whether the server offers an operation ("GET", "/api/v1/live"): the page's
 * configuration lists them, so no request is spent on `/openapi.json` before the map.
 */
export async function has(method, path) {
  if (operations === null) {
    const listed = config().operations;
    operations = new Set(listed || []);
    if (!listed) {
      const result = await api("/openapi.json");
      if (result.ok) {
        for (const [p, ops] of Object.entries(result.data.paths || {})) {
          for (const m of Object.keys(ops)) operations.add(`${m.toUpperCase()} ${p}`);
        }
      }
    }
  }
  return operations.has(`${method} ${path}`);
}

const SIGNED_IN = "crossbeat-signed-in";

/** Return the signed-in user ({user, csrf_token, ...}) or null, without a failing call. */
export async function currentUser() {
  // Only ask the server when this browser signed in before: an anonymous visit makes
  // no call that answers 401 (it would be a console error on every public page).
  if (!localStorage.getItem(SIGNED_IN)) return null;
  const result = await api("/auth/me");
  if (!result.ok) {
    localStorage.removeItem(SIGNED_IN);
    return null;
  }
  csrf = result.data.csrf_token;
  return result.data;
}

/** Show the two-step sign-in form (password, then one-time code) in `host`. */
export function signInForm(host, onSignedIn) {
  const message = el("p", { class: "message", role: "alert" });
  const user = el("input", { id: "cb-username", name: "username", autocomplete: "username", required: true });
  const password = el("input", { id: "cb-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const code = el("input", { id: "cb-code", name: "code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", required: true });
  const step1 = el("form", { class: "signin", "aria-label": "Sign in" },
    el("h2", {}, "Sign in"),
    el("label", { for: "cb-username" }, "Username"), user,
    el("label", { for: "cb-password" }, "Password"), password,
    el("button", { type: "submit" }, "Continue"));
  const step2 = el("form", { class: "signin", "aria-label": "One-time code", hidden: true },
    el("h2", {}, "One-time code"),
    el("label", { for: "cb-code" }, "Code from your authenticator app"), code,
    el("button", { type: "submit" }, "Sign in"));
  let ticket = null;
  step1.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await api("/auth/login", { method: "POST", body: { username: user.value, password: password.value } });
    if (!result.ok) return (message.textContent = errorText(result));
    ticket = result.data.mfa_ticket;
    message.textContent = "";
    step1.hidden = true;
    step2.hidden = false;
    code.focus();
  });
  step2.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await api("/auth/mfa", { method: "POST", body: { ticket, code: code.value } });
    if (!result.ok) return (message.textContent = errorText(result));
    csrf = result.data.csrf_token;
    localStorage.setItem(SIGNED_IN, "1");
    host.replaceChildren();
    onSignedIn(result.data);
  });
  host.replaceChildren(step1, step2, message);
  user.focus();
}

/** Sign out and reload the page. */
export async function signOut() {
  await api("/auth/logout", { method: "POST" });
  localStorage.removeItem(SIGNED_IN);
  location.reload();
}

/** A user bar: who is signed in and a sign-out button. */
export function userBar(me) {
  return el("div", { class: "userbar" },
    el("span", {}, `${me.user.display_name || me.user.username} · ${me.user.agency}`),
    el("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
}

/** Colour-blind-safe colours (Okabe-Ito), by agency and by crime against. */
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
export const CATEGORY_COLOURS = { person: "#D55E00", property: "#0072B2", society: "#009E73" };

/** The MapLibre style: a plain background, and raster tiles when configured. */
export function baseStyle(cfg) {
  const style = {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef0ea" } }],
  };
  if (cfg.basemap_tiles) {
    style.sources.basemap = {
      type: "raster",
      tiles: [cfg.basemap_tiles],
      tileSize: 256,
      maxzoom: 19,
      attribution: cfg.basemap_attribution || "",
    };
    // No fade-in: each fading tile repaints the whole map for 300 ms, and a browser
    // drawing WebGL on the CPU (no GPU) then spends the view's first second repainting.
    style.layers.push({ id: "basemap", type: "raster", source: "basemap", paint: { "raster-fade-duration": 0 } });
  }
  return style;
}

// A 1440×900 view needs about 48 base-map tiles (256 px). MapLibre asks for 16 at a
// time and starts the next only when the page's thread is free again: where WebGL is
// drawn on the CPU that takes a frame, so a view's base map arrived in three or four
// rounds (issue #12). The tile servers answer many at once (HTTP/2).
maplibregl.setMaxParallelImageRequests(64);

/** Create the map in `container`; base map failures leave a note, never an error. */
export function createMap(container, options = {}) {
  const cfg = config();
  const map = new maplibregl.Map({
    container,
    style: baseStyle(cfg),
    center: [-122.6, 45.45],
    zoom: 9,
    attributionControl: { compact: false },
    ...options,
  });
  // The style is applied on a later frame, so this listener cannot miss it.
  STYLED.set(map, new Promise((resolve) => map.once("style.load", resolve)));
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.on("error", (event) => {
    // Tiles that cannot be fetched (an offline machine) leave the plain background:
    // the data layers and boundaries still draw. The base map is dropped after the
    // first failure so that an offline map does not ask again at every pan and zoom.
    if (event.sourceId === "basemap") {
      if (map.getLayer("basemap")) {
        map.removeLayer("basemap");
        document.body.dataset.basemap = "offline";
      }
      return;
    }
    console.error(event.error);
  });
  window.cbMap = map;
  return map;
}

const STYLED = new WeakMap();

/**
 * Resolve once the style of a map made by `createMap` is applied, so that sources and
 * layers can be added.
 *
 * Not MapLibre's `load`, which also waits for the first view's tiles: the data layers
 * would then wait for every base-map tile before even being asked for (issue #12).
 */
export function whenStyled(map) {
  return STYLED.get(map);
}

/**
 * Map options that open the map on the given features (the jurisdictions), so that
 * the first view's tiles are the ones wanted, not those of a default view.
 */
export function openingView(features, padding = 20) {
  return features.length ? { bounds: bounds(features), fitBoundsOptions: { padding } } : {};
}

/**
 * Resolve once the given sources are loaded for the map's current view and drawn.
 *
 * A source follows the camera only when the map renders a frame: right after `jumpTo`,
 * `addSource` or `setTiles` it still reports the previous view (or no tile at all) as
 * loaded until then. So the first check waits for a rendered frame, in which the tiles
 * of the new view have been asked for (issue #12: a check on the next tick could
 * declare a new view drawn before any of its tiles was requested).
 */
export function settled(map, sources) {
  return new Promise((resolve) => {
    const check = () => {
      const loaded = sources.every((id) => !map.getSource(id) || map.isSourceLoaded(id));
      if (loaded && !map.isMoving()) {
        map.once("render", () => resolve());
        map.triggerRepaint();
      } else setTimeout(check, 50);
    };
    map.once("render", check);
    map.triggerRepaint();
  });
}

/** Add the jurisdiction boundaries and fit the map to them; returns the features. */
export async function addBoundaries(map, { fit = true, fetched = null } = {}) {
  const result = await (fetched || api("/api/v1/jurisdictions"));
  const data = result.ok ? result.data : { type: "FeatureCollection", features: [] };
  map.addSource("boundaries", { type: "geojson", data });
  map.addLayer({ id: "boundaries-fill", type: "fill", source: "boundaries", paint: { "fill-color": "#ffffff", "fill-opacity": 0.35 } });
  map.addLayer({ id: "boundaries-line", type: "line", source: "boundaries", paint: { "line-color": "#555555", "line-width": 1.5, "line-dasharray": [3, 2] } });
  if (fit && data.features.length) map.fitBounds(bounds(data.features), { padding: 20, animate: false });
  return data.features;
}

/** The bounds [[w, s], [e, n]] of GeoJSON features. */
export function bounds(features) {
  let w = 180, s = 90, e = -180, n = -90;
  const visit = (c) => {
    if (typeof c[0] === "number") {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(visit);
  };
  features.forEach((f) => f.geometry && visit(f.geometry.coordinates));
  return [[w, s], [e, n]];
}

/** H3 cells with counts → polygon features ({h3, count}); a null count is suppressed. */
export function hexagons(cells) {
  return {
    type: "FeatureCollection",
    features: cells.map((c) => {
      const ring = cellToBoundary(c.key[0], true);
      return {
        type: "Feature",
        geometry: { type: "Polygon", coordinates: [ring] },
        properties: { h3: c.key[0], count: c.count ?? -1 },
      };
    }),
  };
}

/** The colour of a hexagon by its count (-1 or absent, as in the tiles: suppressed, too few to publish). */
export const HEX_FILL = ["step", ["coalesce", ["get", "count"], -1], "#d9d9d9", 0, "#fde0c5", 5, "#facba6", 15, "#f59e72", 40, "#e4572e", 100, "#a63603"];

/** Query string from an object (arrays repeat the key; empty values are left out). */
export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) q.append(key, v);
  }
  return q.toString();
}

/** Read pages of GeoJSON incidents up to `max` features. */
export async function incidentsGeoJSON(params, max = 20000) {
  const features = [];
  let after = null;
  do {
    const result = await api(`/api/v1/incidents?${query({ ...params, f: "geojson", limit: 5000, after })}`);
    if (!result.ok) return { features, error: errorText(result) };
    features.push(...result.data.features.filter((f) => f.geometry));
    after = result.data.next_after;
  } while (after && features.length < max);
  return { type: "FeatureCollection", features, truncated: Boolean(after) };
}

/**
 * Keep a GeoJSON source filled with the incidents in the map's view at `minZoom` and
 * above (at most `max`; empty below). Returns `load(params)`, called after each filter
 * change; the map calls it after each move. A newer load wins over a slower older one.
 */
export function viewportPoints(map, sourceId, { minZoom, max = 20000, params, onLoaded = () => {} }) {
  let sequence = 0;
  const empty = { type: "FeatureCollection", features: [] };
  const load = async (current = params()) => {
    const mine = ++sequence;
    if (current.empty || map.getZoom() < minZoom) {
      map.getSource(sourceId).setData(empty);
      onLoaded(empty);
      return;
    }
    const { empty: _unused, ...filters } = current;
    const b = map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(",");
    const data = await incidentsGeoJSON({ ...filters, bbox }, max);
    if (mine !== sequence) return;
    map.getSource(sourceId).setData(data);
    onLoaded(data);
  };
  map.on("moveend", async () => {
    document.body.dataset.ready = "0";
    await load();
    await settled(map, [sourceId]);
    document.body.dataset.ready = "1";
  });
  return load;
}

/** The NIBRS codes the viewer's incidents hold (the offence-type choice lists these), or null. */
export async function presentOffences() {
  const result = await api("/api/v1/aggregates?by=nibrs");
  if (!result.ok) return null;
  // "unmapped": records whose local code no crosswalk maps (no NIBRS code to filter by).
  return new Set(result.data.cells.map((c) => c.key[0]).filter((k) => k && k !== "unmapped"));
}

/** Month keys ("2026-03") from the first to the last month with data. */
export function monthRange(cells) {
  const keys = cells.map((c) => c.key[0]).sort();
  if (!keys.length) return [];
  const months = [];
  let [y, m] = keys[0].slice(0, 7).split("-").map(Number);
  const last = keys[keys.length - 1].slice(0, 7);
  for (;;) {
    const key = `${y}-${String(m).padStart(2, "0")}`;
    months.push(key);
    if (key >= last) break;
    m += 1;
    if (m > 12) { m = 1; y += 1; }
  }
  return months;
}

/** "2026-03" → the first instant of that month, UTC, as ISO text. */
export function monthStart(key) {
  return `${key}-01T00:00:00Z`;
}

/** The month after "2026-03". */
export function nextMonth(key) {
  let [y, m] = key.split("-").map(Number);
  m += 1;
  if (m > 12) { m = 1; y += 1; }
  return `${y}-${String(m).padStart(2, "0")}`;
}

/** Format a count that may be suppressed (null). */
export function count(value) {
  return value === null || value === undefined ? "few" : value.toLocaleString("en");
}

/**
 * The refresh after a filter change, shared by the analyst and public maps. With vector
 * tiles (`tiles`) the tiles are replaced at once and the total follows without holding
 * up the map; without them the total, the `h3_7` hexagons and the points in view
 * (`loadPoints`) are read again. `params()` gives the filters' query parameters
 * (`empty`: nothing ticked), `showTotal(agg)` shows a total; the page's `ready` flag
 * is "0" until the map has drawn the result.
 */
export function mapRefresher(map, { tiles, tilePath, params, showTotal, loadPoints = async () => {} }) {
  const ready = (value) => (document.body.dataset.ready = value);
  const empty = { type: "FeatureCollection", features: [] };
  return async function refresh() {
    ready("0");
    const current = params();
    if (current.empty) {
      showTotal({ ok: true, data: { total: 0, complete: true } });
      if (!tiles) {
        map.getSource("hex").setData(empty);
        map.getSource("points").setData(empty);
      }
    } else {
      delete current.empty;
      if (tiles) {
        map.getSource("incidents").setTiles([`${location.origin}${tilePath}?${query(current)}`]);
        api(`/api/v1/aggregates?${query(current)}`).then(showTotal);
      } else {
        const [agg, hex] = await Promise.all([
          api(`/api/v1/aggregates?${query(current)}`),
          api(`/api/v1/aggregates?${query({ ...current, by: "h3_7" })}`),
          loadPoints({ ...current }),
        ]);
        showTotal(agg);
        map.getSource("hex").setData(hexagons(hex.ok ? hex.data.cells : []));
      }
    }
    await settled(map, tiles ? ["incidents"] : ["hex", "points"]);
    ready("1");
  };
}

/** A polygon of `sides` vertices approximating a circle of `metres` around [lon, lat]. */
export function circle([lon, lat], metres, sides = 32) {
  const dLat = metres / 111320;
  const dLon = dLat / Math.cos((lat * Math.PI) / 180);
  const ring = [];
  for (let i = 0; i <= sides; i++) {
    const a = (2 * Math.PI * (i % sides)) / sides;
    ring.push([lon + dLon * Math.cos(a), lat + dLat * Math.sin(a)]);
  }
  return { type: "Polygon", coordinates: [ring] };
}

/**
 * Open the live stream (GET /api/v1/live) with a handler per event type. While the browser
 * is offline the stream is closed (no reconnection attempts); back online, a new stream
 * resumes after the last event received (`?after=`). Otherwise EventSource reconnects by
 * itself, sending Last-Event-ID.
 */
export function liveStream(handlers) {
  let stream = null;
  let last = null;
  const open = () => {
    stream = new EventSource(last ? `/api/v1/live?after=${encodeURIComponent(last)}` : "/api/v1/live");
    for (const [type, handle] of Object.entries(handlers)) {
      stream.addEventListener(type, (event) => {
        if (event.lastEventId) last = event.lastEventId;
        handle(event);
      });
    }
    stream.onerror = () => {};
  };
  window.addEventListener("offline", () => { stream?.close(); stream = null; });
  window.addEventListener("online", () => { if (!stream) open(); });
  if (navigator.onLine !== false) open();
}
