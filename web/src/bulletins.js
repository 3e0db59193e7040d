// The bulletins panel, shared by the analyst workspace (/app) and the field app (/field):
// the bulletins the user's agency sent or got (GET /api/v1/bulletins, newest first). A
// bulletin addressed to us and not yet acknowledged is flagged and has an Acknowledge
// button (POST /api/v1/bulletins/{id}/ack, audited by the server); one we acknowledged
// says who did and when; one we sent lists each recipient's acknowledgement. The page
// calls refresh() on the live stream's bulletin.created and bulletin.acknowledged events.
import { api, el, errorText, has } from "./common.js";

const KINDS = { bolo: "BOLO", series: "Series warning", officer_safety: "Officer safety" };

/** A stored time in the reader's own time zone, unambiguously ("2026-12-07 06:38"). */
const when = (iso) => (iso ? new Date(iso).toLocaleString("sv-SE", { dateStyle: "short", timeStyle: "short" }) : "");

/**
 * Fill `host` with the bulletins panel, where the server has bulletins.
 * @param {HTMLElement} host the panel's element (emptied and filled)
 * @param {{agency: string}} user the signed-in user (`user` of GET /auth/me)
 * @returns {Promise<(() => Promise<void>) | null>} refresh, or null without bulletins
 */
export async function bulletinsPanel(host, user) {
  if (!(await has("GET", "/api/v1/bulletins"))) return null;
  const canAck = await has("POST", "/api/v1/bulletins/{bulletin_id}/ack");
  const message = el("p", { class: "hint", role: "status" });
  const refresh = async () => {
    const result = await api("/api/v1/bulletins");
    if (!result.ok) return host.replaceChildren(el("h2", {}, "Bulletins"), el("p", { role: "alert" }, errorText(result)));
    const items = result.data.bulletins || [];
    const waiting = items.filter((b) => b.unacknowledged).length;
    host.replaceChildren(
      el("h2", { id: "bulletins-title" }, waiting ? `Bulletins (${waiting} to acknowledge)` : "Bulletins"),
      items.length ? el("ul", { id: "bulletin-list", "aria-labelledby": "bulletins-title" }, items.map((b) => item(b))) : el("p", { class: "hint" }, "No bulletins."),
      message,
    );
    host.dataset.count = String(items.length);
    host.dataset.waiting = String(waiting);
  };
  const item = (b) => {
    const sent = b.agency_id === user.agency;
    const ours = (b.recipients || []).find((r) => r.agency_id === user.agency);
    const state = sent ? "sent" : b.unacknowledged ? "unacknowledged" : "acknowledged";
    const li = el("li", { class: `bulletin bulletin-${state}`, "data-id": b.id, "data-state": state },
      el("strong", {}, `${KINDS[b.kind] || b.kind}: ${b.title}`),
      el("span", { class: "hint" }, ` ${sent ? "sent by us" : `from ${b.agency_id}`}, ${when(b.created_at)}`),
      b.body ? el("p", {}, b.body) : null,
      b.incident_count ? el("p", { class: "hint" }, `${b.incident_count} incident(s) referenced`) : null);
    if (sent) {
      li.append(el("p", { class: "hint" }, "To: ", (b.recipients || []).map((r, i) =>
        el("span", { "data-agency": r.agency_id, "data-acknowledged-by": r.acknowledged_by || "" },
          `${i ? "; " : ""}${r.agency_id} ${r.acknowledged_at ? `acknowledged on ${when(r.acknowledged_at)}` : "not acknowledged yet"}`))));
    } else if (b.unacknowledged && canAck) {
      li.append(el("button", { type: "button", "aria-label": `Acknowledge: ${b.title}`, onclick: async (event) => {
        event.currentTarget.disabled = true;
        const done = await api(`/api/v1/bulletins/${encodeURIComponent(b.id)}/ack`, { method: "POST" });
        message.textContent = done.ok ? `Acknowledged "${b.title}".` : `Not acknowledged: ${errorText(done)}`;
        await refresh();
      } }, "Acknowledge"));
    } else if (ours && ours.acknowledged_at) {
      li.append(el("p", { class: "hint", "data-acknowledged-by": ours.acknowledged_by || "" }, `Acknowledged by our agency on ${when(ours.acknowledged_at)}`));
    }
    return li;
  };
  await refresh();
  return refresh;
}
