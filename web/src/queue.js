// The field app's offline queue: reports wait in IndexedDB, each with its idempotency key,
// and are sent when the connection returns; the server answers a repeated key with the
// first result, so a report is never filed twice.
const DB = "crossbeat-field";
const STORE = "outbox";

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "key" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, action) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = action(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
  });
}

/** Put a report in the outbox: {key, body, created}. */
export const enqueue = (item) => run("readwrite", (s) => s.put(item));
/** Every waiting report, oldest first. */
export const pending = async () => (await run("readonly", (s) => s.getAll())).sort((a, b) => a.created.localeCompare(b.created));
/** Remove a report that the server took (or refused for good). */
export const remove = (key) => run("readwrite", (s) => s.delete(key));

/**
 * Send every waiting report, in order; stop at the first network failure.
 * `send(item)` resolves to the HTTP status, or throws when the network is down.
 */
export async function flush(send) {
  const done = [];
  for (const item of await pending()) {
    let status;
    try {
      status = await send(item);
    } catch {
      break; // offline again: keep it and the rest for the next try
    }
    // 2xx: stored. 4xx other than 408/429: the server refuses it for good (shown, dropped).
    if ((status >= 200 && status < 300) || (status >= 400 && status < 500 && status !== 408 && status !== 429)) {
      await remove(item.key);
      done.push({ ...item, status });
    } else break;
  }
  return done;
}
