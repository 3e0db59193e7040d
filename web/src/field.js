// The officer field app (/field): a phone-sized PWA. Sign in, map around my location,
// recent incidents nearby, a quick report with the current location, an offline queue,
// the live feed (GET /api/v1/live) and the bulletins with acknowledgement.
import { bulletinsPanel } from "./bulletins.js";
import { addBoundaries, api, bounds, createMap, currentUser, el, errorText, has, incidentsGeoJSON, liveStream, query, signInForm, userBar, whenStyled } from "./common.js";
import { enqueue, flush, pending } from "./queue.js";

const REPORT = "/api/v1/incidents";
const OFFENCES = [["13B", "Simple assault"], ["23H", "All other larceny"], ["23F", "Theft from motor vehicle"], ["220", "Burglary"], ["290", "Vandalism"], ["240", "Motor vehicle theft"], ["35A", "Drug/narcotic violations"], ["90Z", "All other offences"]];
const host = document.getElementById("content");
const ready = (value) => (document.body.dataset.ready = value);
let here = null;

if ("serviceWorker" in navigator) navigator.serviceWorker.register("/field/sw.js", { scope: "/field" }).catch(() => {});

async function boot() {
  ready("0");
  const me = await currentUser();
  if (me) start(me);
  else signInForm(host, start);
}

async function start(me) {
  document.getElementById("user").replaceChildren(userBar(me));
  const status = el("p", { id: "sync-status", role: "status" });
  const nearby = el("ul", { id: "nearby" });
  const canReport = await has("POST", REPORT);
  const code = el("select", { id: "r-code" }, OFFENCES.map(([c, n]) => el("option", { value: c }, `${n} (${c})`)));
  const note = el("textarea", { id: "r-note", rows: 3 });
  const form = el("form", { id: "report", "aria-label": "Quick report" }, el("h2", {}, "Quick report"),
    el("label", { for: "r-code" }, "Offence"), code,
    el("label", { for: "r-note" }, "What happened"), note,
    el("button", { type: "submit", disabled: !canReport }, "File report at my location"),
    canReport ? null : el("p", { class: "hint" }, "This server does not take field reports yet."));
  const bulletinsHost = el("section", { id: "bulletins", "aria-label": "Bulletins" });
  const live = el("section", { id: "live", "aria-label": "Live feed" });
  host.replaceChildren(el("div", { id: "map", class: "field-map", role: "region", "aria-label": "Map around my location" }), form, status, bulletinsHost, live, el("h2", {}, "Recent incidents nearby"), nearby);
  const bulletins = bulletinsPanel(bulletinsHost, me.user);
  // The map opens in the middle of the region (not on a default view whose tiles would
  // be asked for first), and moves to the officer's position once it is known.
  const fetched = api("/api/v1/jurisdictions");
  const opening = await fetched;
  const region = opening.ok ? opening.data.features : [];
  const map = createMap("map", region.length ? { center: centre(bounds(region)), zoom: 14 } : { zoom: 14 });
  await whenStyled(map);
  const boundaries = await addBoundaries(map, { fit: false, fetched });
  map.addSource("nearby", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "nearby", type: "circle", source: "nearby", paint: { "circle-radius": 6, "circle-color": "#0072B2", "circle-stroke-width": 1, "circle-stroke-color": "#fff" } });
  map.addSource("me", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "me", type: "circle", source: "me", paint: { "circle-radius": 8, "circle-color": "#D55E00", "circle-stroke-width": 2, "circle-stroke-color": "#fff" } });

  const locate = () => new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition((p) => resolve([p.coords.longitude, p.coords.latitude]), () => resolve(null), { timeout: 5000, maximumAge: 60000 });
  });
  // Without a position (refused, or no GPS) the map starts in the middle of the region.
  here = (await locate()) || (boundaries.length ? centre(bounds(boundaries)) : map.getCenter().toArray());
  map.jumpTo({ center: here, zoom: 14 });
  map.getSource("me").setData({ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: here } });

  const loadNearby = async () => {
    const [lon, lat] = here;
    const since = new Date(Date.now() - 30 * 86400000).toISOString();
    const data = await incidentsGeoJSON({ bbox: [lon - 0.02, lat - 0.015, lon + 0.02, lat + 0.015].map((v) => v.toFixed(6)).join(","), since }, 500);
    map.getSource("nearby").setData(data);
    nearby.replaceChildren(...data.features.slice(0, 20).map((f) => el("li", {}, `${f.properties.offence_name || f.properties.nibrs_code} · ${String(f.properties.occurred_from).slice(0, 16)}`)));
    if (!data.features.length) nearby.append(el("li", {}, "Nothing in the last 30 days."));
  };

  const showQueue = async () => {
    const waiting = await pending();
    status.textContent = navigator.onLine ? (waiting.length ? `${waiting.length} report(s) sending…` : "All reports sent.") : `Offline: ${waiting.length} report(s) waiting.`;
  };
  const sync = async () => {
    if (!navigator.onLine) return showQueue();
    const sent = await flush(async (item) => {
      const response = await fetch(REPORT, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "Idempotency-Key": item.key, "X-CSRF-Token": me.csrf_token }, body: JSON.stringify(item.body) });
      return response.status;
    });
    if (sent.some((s) => s.status >= 400)) status.textContent = "A report was refused by the server.";
    else await showQueue();
    if (sent.length) await loadNearby();
  };
  window.addEventListener("online", sync);
  window.addEventListener("offline", showQueue);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const [lon, lat] = here;
    const item = {
      key: crypto.randomUUID(),
      created: new Date().toISOString(),
      // The field report body of POST /api/v1/incidents (docs/api.md "Field reports"): the
      // server files it for the signed-in officer's own agency.
      body: { offence: code.value, occurred_from: new Date().toISOString(), lat, lon, ...(note.value.trim() ? { narrative: note.value } : {}) },
    };
    await enqueue(item);
    note.value = "";
    await sync();
  });
  await loadNearby();
  await sync();
  await liveFeed(live, { onIncident: loadNearby, onBulletin: async () => (await bulletins)?.() });
  await bulletins;
  ready("1");
}

/**
 * The live feed, where the server streams it: each incident event the officer may see
 * (newest first, the last 20), and a reload of the nearby incidents after a burst of them;
 * bulletin events refresh the bulletins panel. Paused while offline (`liveStream`).
 */
async function liveFeed(host, { onIncident, onBulletin }) {
  if (!(await has("GET", "/api/v1/live"))) return;
  const list = el("ul", { id: "live-list", "aria-live": "polite" });
  host.replaceChildren(el("h2", {}, "Live feed"), el("p", { class: "hint", id: "live-empty" }, "New and changed incidents appear here as they are filed."), list);
  let pending = null;
  const changed = (event) => {
    const record = JSON.parse(event.data);
    document.getElementById("live-empty")?.remove();
    list.prepend(el("li", {}, `${event.type.replace("incident.", "")}: ${record.offence_name || record.nibrs_code || record.id} (${record.agency_id}) ${String(record.occurred_from || "").slice(11, 16)}`));
    while (list.children.length > 20) list.lastChild.remove();
    clearTimeout(pending); // one reload of the nearby incidents for a burst of events
    pending = setTimeout(onIncident, 500);
  };
  liveStream({
    "incident.created": changed, "incident.updated": changed, "incident.withdrawn": changed,
    "bulletin.created": onBulletin, "bulletin.acknowledged": onBulletin,
  });
}

function centre([[w, s], [e, n]]) {
  return [(w + e) / 2, (s + n) / 2];
}

boot();
