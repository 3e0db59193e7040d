// The field app's service worker: the app shell works offline (network first, the
// cached copy when offline). API answers are never cached: they carry policy-filtered
// data for one signed-in officer.
const CACHE = "crossbeat-field-v1";
const SHELL = ["/field", "/static/web/assets/field.js", "/static/web/assets/style.css", "/field/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const shell = url.origin === location.origin && (url.pathname === "/field" || url.pathname.startsWith("/static/web/"));
  if (event.request.method !== "GET" || !shell) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        return response;
      })
      .catch(() => caches.match(event.request)),
  );
});
