// Agency admin (/admin): sharing agreements with a live preview, the audit viewer with
// CSV export, and users, tokens, ingest jobs and quarantine where the server has them.
import { api, currentUser, el, errorText, has, query, signInForm, userBar } from "./common.js";

const main = document.getElementById("content");
const ready = (value) => (document.body.dataset.ready = value);

async function start(me) {
  document.getElementById("user").replaceChildren(userBar(me));
  const roles = new Set(me.user.roles);
  const sections = [];
  if (roles.has("agency_admin") || roles.has("platform_admin")) sections.push(await agreements(me));
  if (roles.has("auditor") || roles.has("platform_admin")) sections.push(audit(me));
  sections.push(await optional("Users and roles", "/api/v1/users", (d) => (d.users || []).map((u) => `${u.username} (${(u.roles || []).join(", ")})`)));
  sections.push(await optional("API tokens", "/api/v1/tokens", (d) => (d.tokens || []).map((t) => `${t.label || t.id}`)));
  sections.push(await optional("Ingest jobs", "/api/v1/jobs", (d) => (d.jobs || []).map((j) => `${j.id}: ${j.status || ""} ${j.progress ?? ""}`)));
  sections.push(await optional("Quarantine", "/api/v1/quarantine", (d) => (d.rows || d.records || []).map((r) => `${r.id}: ${(r.reasons || []).join("; ")}`)));
  main.replaceChildren(...sections);
  ready("1");
}

/** A read-only list from an endpoint another part of the server offers, or a note. */
async function optional(title, path, lines) {
  const section = el("section", { "aria-label": title }, el("h2", {}, title));
  if (!(await has("GET", path))) {
    section.append(el("p", { class: "hint" }, "Not available on this server yet."));
    return section;
  }
  const result = await api(path);
  section.append(result.ok ? el("ul", {}, lines(result.data).map((l) => el("li", {}, l))) : el("p", {}, errorText(result)));
  return section;
}

async function agreements(me) {
  const section = el("section", { id: "agreements", "aria-label": "Sharing agreements" }, el("h2", {}, "Sharing agreements"));
  const table = el("table", { id: "agreement-table" });
  const message = el("p", { id: "agreement-message", role: "status" });
  const grantee = el("input", { id: "a-grantee", required: true, placeholder: "clackmerco, group:ID or public" });
  const precision = el("select", { id: "a-precision" }, ["exact", "block", "h3:9", "h3:8", "h3:7", "h3:6", "jurisdiction"].map((p) => el("option", { value: p }, p)));
  const fields = el("input", { id: "a-fields", value: "id,offences,occurred,location", placeholder: "id,offences,occurred,location" });
  const delay = el("input", { id: "a-delay", placeholder: "24h or 7d" });
  const reference = el("input", { id: "a-reference", placeholder: "MoU of 2026-03-01" });
  const form = el("form", { id: "agreement-form", "aria-label": "New agreement" }, el("h3", {}, "New agreement"),
    el("label", { for: "a-grantee" }, "Grantee"), grantee,
    el("label", { for: "a-precision" }, "Location precision"), precision,
    el("label", { for: "a-fields" }, "Fields (comma separated)"), fields,
    el("label", { for: "a-delay" }, "Delay"), delay,
    el("label", { for: "a-reference" }, "Reference (the decision it rests on)"), reference,
    el("button", { type: "submit" }, "Create agreement"));
  const previewFor = el("input", { id: "p-grantee", placeholder: "clackmerco" });
  const preview = el("div", { id: "preview", "aria-live": "polite" });
  const previewBox = el("div", { class: "preview" }, el("h3", {}, "Preview: what a grantee sees now"),
    el("label", { for: "p-grantee" }, "Grantee"), previewFor, preview);

  async function load() {
    const result = await api(`/api/v1/agreements`);
    if (!result.ok) return (message.textContent = errorText(result));
    table.replaceChildren(el("caption", {}, `Agreements of ${me.user.agency}`),
      el("thead", {}, el("tr", {}, ["Grantee", "Precision", "Fields", "Status", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, result.data.agreements.map((a) => el("tr", { "data-id": a.id, "data-grantee": a.grantee },
        el("td", {}, a.grantee), el("td", {}, a.precision), el("td", {}, a.fields.join(", ")), el("td", {}, a.status),
        el("td", {}, a.status === "revoked" || a.status === "expired" ? "" : el("button", { type: "button", class: "revoke", "aria-label": `Revoke the agreement with ${a.grantee}`, onclick: () => revoke(a) }, "Revoke"))))));
    await showPreview();
  }
  async function revoke(agreement) {
    const result = await api(`/api/v1/agreements/${agreement.id}/revoke`, { method: "POST", body: { reason: "revoked in the admin page" } });
    message.textContent = result.ok ? `Revoked the agreement with ${agreement.grantee}.` : errorText(result);
    await load();
  }
  async function showPreview() {
    const who = previewFor.value.trim();
    if (!who) return preview.replaceChildren(el("p", { class: "hint" }, "Name a grantee to preview."));
    const result = await api(`/api/v1/agreements/preview?${query({ grantee: who, sample: 5 })}`);
    if (!result.ok) return preview.replaceChildren(el("p", { role: "alert" }, errorText(result)));
    const d = result.data;
    preview.replaceChildren(
      el("p", { id: "preview-visible" }, `${d.visible} of ${d.total} records visible to ${d.grantee}`),
      el("ul", {}, Object.entries(d.hidden).map(([why, n]) => el("li", {}, `${n} hidden: ${why}`))),
      el("p", { class: "hint" }, d.sample_kind === "stand-ins" ? "Sample (synthetic stand-ins of the same shape):" : "Sample:"),
      el("pre", {}, JSON.stringify(d.sample.slice(0, 3), null, 1)));
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { grantee: grantee.value.trim(), precision: precision.value, fields: fields.value.split(",").map((f) => f.trim()).filter(Boolean), reference: reference.value };
    if (delay.value.trim()) body.delay = delay.value.trim();
    const result = await api("/api/v1/agreements", { method: "POST", body });
    message.textContent = result.ok ? `Created; status ${result.data.status}.` : errorText(result);
    previewFor.value = body.grantee;
    await load();
  });
  let timer = null;
  previewFor.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(showPreview, 300); });
  section.append(message, table, el("div", { class: "columns" }, form, previewBox));
  await load();
  return section;
}

function audit(me) {
  const section = el("section", { id: "audit", "aria-label": "Audit log" }, el("h2", {}, "Who accessed our data"));
  const since = el("input", { id: "au-since", type: "date" });
  const until = el("input", { id: "au-until", type: "date" });
  const action = el("input", { id: "au-action", placeholder: "read" });
  const by = el("input", { id: "au-by", placeholder: "user id" });
  const table = el("table", { id: "audit-table" });
  let rows = [];
  const form = el("form", { class: "inline", "aria-label": "Filter the audit log" },
    el("label", { for: "au-since" }, "From"), since, el("label", { for: "au-until" }, "Until"), until,
    el("label", { for: "au-action" }, "Action"), action, el("label", { for: "au-by" }, "Actor"), by,
    el("button", { type: "submit" }, "Filter"),
    el("button", { type: "button", id: "audit-csv", onclick: () => exportCsv(rows) }, "Export CSV"));
  const load = async () => {
    const params = { since: since.value && `${since.value}T00:00:00Z`, until: until.value && `${until.value}T00:00:00Z`, action: action.value.trim(), by: by.value.trim(), limit: 1000 };
    const result = await api(`/api/v1/audit?${query(params)}`);
    if (!result.ok) return table.replaceChildren(el("caption", {}, errorText(result)));
    rows = result.data.events;
    table.replaceChildren(el("caption", {}, `${rows.length} events touching ${me.user.agency}'s data, newest first`),
      el("thead", {}, el("tr", {}, ["When", "Who", "Action", "Outcome", "Records", "Purpose"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((e) => el("tr", {}, el("td", {}, e.occurred_at), el("td", {}, e.actor_name || e.actor), el("td", {}, e.action), el("td", {}, e.outcome), el("td", {}, e.record_count), el("td", {}, e.purpose || "")))));
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  section.append(form, table);
  load();
  return section;
}

function exportCsv(rows) {
  const columns = ["seq", "occurred_at", "actor", "actor_name", "actor_agency", "source_ip", "action", "outcome", "purpose", "resource_type", "record_count", "entry_hash"];
  const cell = (v) => { const t = v === null || v === undefined ? "" : String(v); return /[",\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t; };
  const text = [columns.join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: "crossbeat-audit.csv" });
  document.body.append(link);
  link.click();
  link.remove();
}

async function boot() {
  ready("0");
  const me = await currentUser();
  if (me) start(me);
  else signInForm(main, start);
}

boot();
