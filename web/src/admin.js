// Agency admin (/admin): sharing agreements with a live preview, the audit viewer with
// CSV export, and users, tokens, ingest jobs and quarantine where the server has them.
import { api, currentUser, el, errorText, has, query, signInForm, userBar } from "./common.js";

const main = document.getElementById("content");
const ready = (value) => (document.body.dataset.ready = value);

async function start(me) {
  document.getElementById("user").replaceChildren(userBar(me));
  const roles = new Set(me.user.roles);
  const admin = roles.has("agency_admin") || roles.has("platform_admin");
  const reader = admin || roles.has("auditor");
  // Each section is asked for only by a role that may see it: a refused call would be
  // an error in the browser's console.
  const sections = [];
  if (admin) sections.push(await agreements(me));
  if (roles.has("auditor") || roles.has("platform_admin")) sections.push(audit(me));
  if (reader && (await has("GET", "/api/v1/users"))) sections.push(await users(me, admin));
  if (reader && (await has("GET", "/api/v1/tokens"))) sections.push(await tokens(admin));
  if (admin && (await has("GET", "/api/v1/jobs"))) sections.push(await jobs());
  if (admin && (await has("GET", "/api/v1/quarantine"))) sections.push(await quarantine());
  main.replaceChildren(...sections);
  ready("1");
}

const ROLES = ["officer", "analyst", "supervisor", "agency_admin", "auditor"];

/** Show why a section's table could not be read; its load() returns false. */
function failed(message, result) {
  message.textContent = errorText(result);
  return false;
}

/**
 * Reload a section's table, then say what an action did. Said first, the status invited
 * the next change to a row the pending reload was about to replace (a role box ticked
 * again under the user). A failed reload keeps its own message.
 */
async function reloadThenSay(load, message, text) {
  if (await load()) message.textContent = text;
}

/** Users and roles: tick roles and save, disable or enable an account (each audited). */
async function users(me, manage) {
  const section = el("section", { id: "users", "aria-label": "Users and roles" }, el("h2", {}, "Users and roles"));
  const message = el("p", { id: "users-message", role: "status" });
  const table = el("table", { id: "users-table" });
  // Each action reloads the table before its status says what happened (reloadThenSay):
  // a row changed while a reload was pending would be replaced by it.
  async function load() {
    const result = await api("/api/v1/users");
    if (!result.ok) return failed(message, result);
    table.replaceChildren(el("caption", {}, `Accounts of ${me.user.agency}`),
      el("thead", {}, el("tr", {}, ["User", "Roles", "Status", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, result.data.users.map((u) => userRow(u))));
    return true;
  }
  const userRow = (u) => {
    const boxes = ROLES.map((r) => {
      const id = `role-${u.username}-${r}`.replace(/[^A-Za-z0-9_-]/g, "_");
      return el("label", { class: "check", for: id }, el("input", { type: "checkbox", id, value: r, checked: u.roles.includes(r), disabled: !manage || u.username === me.user.username }), ` ${r}`);
    });
    const save = async () => {
      const chosen = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      const result = await api(`/api/v1/users/${encodeURIComponent(u.username)}/roles`, { method: "PUT", body: { roles: chosen } });
      await reloadThenSay(load, message, result.ok ? `Saved the roles of ${u.username}: ${result.data.roles.join(", ") || "none"}.` : errorText(result));
    };
    const toggle = async () => {
      const verb = u.status === "active" ? "disable" : "enable";
      const result = await api(`/api/v1/users/${encodeURIComponent(u.username)}/${verb}`, { method: "POST" });
      await reloadThenSay(load, message, result.ok ? `${u.username} is now ${result.data.status}.` : errorText(result));
    };
    const self = u.username === me.user.username;
    return el("tr", { "data-username": u.username }, el("td", {}, u.username), el("td", {}, boxes), el("td", {}, u.status + (u.locked ? " (locked)" : "")),
      el("td", {}, manage && !self ? [
        el("button", { type: "button", "aria-label": `Save roles of ${u.username}`, onclick: save }, "Save roles"),
        el("button", { type: "button", "aria-label": `${u.status === "active" ? "Disable" : "Enable"} ${u.username}`, onclick: toggle }, u.status === "active" ? "Disable" : "Enable"),
      ] : ""));
  };
  section.append(message, table);
  await load();
  return section;
}

/** API tokens: create (the secret is shown once), list, revoke. */
async function tokens(manage) {
  const section = el("section", { id: "tokens", "aria-label": "API tokens" }, el("h2", {}, "API tokens"));
  const message = el("div", { id: "tokens-message", role: "status" });
  const table = el("table", { id: "tokens-table" });
  async function load() {
    const result = await api("/api/v1/tokens");
    if (!result.ok) return failed(message, result);
    table.replaceChildren(el("caption", {}, "Tokens, newest first"),
      el("thead", {}, el("tr", {}, ["Label", "Purpose", "Created", "Last used", "Status", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, result.data.tokens.map((t) => el("tr", { "data-id": t.id },
        el("td", {}, t.label || t.id), el("td", {}, t.purpose), el("td", {}, t.created_at.slice(0, 16)), el("td", {}, (t.last_used_at || "never").slice(0, 16)),
        el("td", {}, t.revoked_at ? "revoked" : "active"),
        el("td", {}, manage && !t.revoked_at ? el("button", { type: "button", "aria-label": `Revoke the token ${t.label || t.id}`, onclick: async () => {
          const r = await api(`/api/v1/tokens/${encodeURIComponent(t.id)}/revoke`, { method: "POST" });
          await reloadThenSay(load, message, r.ok ? `Revoked ${t.label || t.id}.` : errorText(r));
        } }, "Revoke") : "")))));
    return true;
  }
  section.append(message);
  if (manage) {
    const label = el("input", { id: "t-label", placeholder: "RMS nightly export" });
    const purpose = el("select", { id: "t-purpose" }, el("option", { value: "ingest" }, "ingest"), el("option", { value: "read" }, "read"));
    const form = el("form", { class: "inline", "aria-label": "New API token" },
      el("label", { for: "t-label" }, "Label"), label, el("label", { for: "t-purpose" }, "Purpose"), purpose,
      el("button", { type: "submit" }, "Create token"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = await api("/api/v1/tokens", { method: "POST", body: { purpose: purpose.value, label: label.value.trim() || null } });
      await load();
      // Shown after the reload, and whatever it says: the secret is never shown again.
      message.replaceChildren(result.ok
        ? el("p", {}, "Token created. Copy it now, it is not shown again: ", el("code", { id: "token-secret" }, result.data.secret))
        : el("p", { role: "alert" }, errorText(result)));
    });
    section.append(form);
  }
  section.append(table);
  await load();
  return section;
}

/** Ingest jobs with their progress, refreshed while any is running. */
async function jobs() {
  const section = el("section", { id: "jobs", "aria-label": "Ingest jobs" }, el("h2", {}, "Ingest jobs"));
  const table = el("table", { id: "jobs-table" });
  let timer = null;
  async function load() {
    const result = await api("/api/v1/jobs");
    if (!result.ok) return table.replaceChildren(el("caption", {}, errorText(result)));
    const list = result.data.jobs;
    table.replaceChildren(el("caption", {}, list.length ? "Uploads, newest first" : "No uploads yet"),
      el("thead", {}, el("tr", {}, ["Created", "Profile", "Status", "Progress", "Summary"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, list.map((j) => {
        const size = j.file_size || 0;
        const bar = el("progress", { max: 100, value: j.status === "complete" ? 100 : undefined, "aria-label": `Progress of job ${j.id}` });
        return el("tr", { "data-id": j.id }, el("td", {}, j.created_at.slice(0, 16)), el("td", {}, j.profile), el("td", {}, j.status),
          el("td", {}, bar, ` ${Number(j.rows_done || 0).toLocaleString("en")} rows${size ? ` of a ${(size / 1e6).toFixed(1)} MB file` : ""}`),
          el("td", {}, j.error || (j.summary ? Object.entries(j.summary).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${v}`).join(", ") : "")));
      })));
    clearTimeout(timer);
    if (list.some((j) => j.status === "queued" || j.status === "running")) timer = setTimeout(load, 2000);
  }
  section.append(table);
  await load();
  return section;
}

/**
 * Quarantined rows: their reasons and raw values (an audited read); fix a value (edit the
 * offending field), retry with the feed's profile, or dismiss (kept, with a reason): each
 * an audited operation of the library.
 */
async function quarantine() {
  const section = el("section", { id: "quarantine", "aria-label": "Quarantine" }, el("h2", {}, "Quarantine review"));
  const message = el("p", { id: "quarantine-message", role: "status" });
  const table = el("table", { id: "quarantine-table" });
  const canFix = await has("POST", "/api/v1/quarantine/{entry_id}/fix");
  const canRetry = await has("POST", "/api/v1/quarantine/retry");
  // The feed's profile for a retry: the last one uploaded is used unless a file is chosen.
  const profileFile = el("input", { id: "q-profile", type: "file", accept: ".toml" });
  const profileText = async () => (profileFile.files && profileFile.files[0] ? await profileFile.files[0].text() : undefined);
  const say = (text) => (message.textContent = text);
  async function retry(r) {
    const body = { ids: [r.id] };
    const profile = await profileText();
    if (profile) body.profile = profile;
    const done = await api("/api/v1/quarantine/retry", { method: "POST", body });
    if (!done.ok) return say(errorText(done));
    const s = done.data.retry;
    await reloadThenSay(load, message, s.still_quarantined ? `Row ${r.row_number} still does not read: see its new reasons.` : `Row ${r.row_number} stored (${s.retried} retried).`);
  }
  function fixForm(r) {
    const fields = Object.keys(r.raw).filter((k) => !k.startsWith("_"));
    const field = el("select", { id: `q-field-${r.id}` }, fields.map((f) => el("option", { value: f }, f)));
    const value = el("input", { id: `q-value-${r.id}`, autocomplete: "off" });
    const show = () => (value.value = r.raw[field.value] ?? "");
    field.addEventListener("change", show);
    show();
    const form = el("form", { class: "fix", "aria-label": `Fix row ${r.row_number} of ${r.source_file}` },
      el("label", { for: `q-field-${r.id}` }, "Field"), field,
      el("label", { for: `q-value-${r.id}` }, "New value"), value,
      el("button", { type: "submit" }, "Save fix"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const done = await api(`/api/v1/quarantine/${r.id}/fix`, { method: "POST", body: { changes: { [field.value]: value.value }, reason: "fixed in the admin page" } });
      if (!done.ok) return say(errorText(done));
      await reloadThenSay(load, message, `Fixed ${field.value} of row ${r.row_number}: retry it to store it.`);
    });
    return form;
  }
  async function load() {
    const result = await api("/api/v1/quarantine?limit=100");
    if (!result.ok) return failed(message, result);
    const rows = result.data.entries;
    table.replaceChildren(el("caption", {}, `${rows.length} open rows held back from the map`),
      el("thead", {}, el("tr", {}, ["File", "Row", "Reasons", "Raw values", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((r) => el("tr", { "data-id": r.id, "data-row": r.row_number },
        el("td", {}, r.source_file), el("td", {}, r.row_number), el("td", {}, r.reasons.join("; ")),
        el("td", {}, el("details", {}, el("summary", {}, "show"), el("pre", { tabindex: "0" }, JSON.stringify(r.raw, null, 1)), canFix ? fixForm(r) : null)),
        el("td", {}, el("div", { class: "row" },
          canRetry ? el("button", { type: "button", "aria-label": `Retry row ${r.row_number} of ${r.source_file}`, onclick: () => retry(r) }, "Retry") : null,
          el("button", { type: "button", "aria-label": `Dismiss row ${r.row_number} of ${r.source_file}`, onclick: async () => {
            const d = await api("/api/v1/quarantine/dismiss", { method: "POST", body: { ids: [r.id], reason: "dismissed in the admin page" } });
            await reloadThenSay(load, message, d.ok ? `Dismissed ${d.data.dismissed} row.` : errorText(d));
          } }, "Dismiss")))))));
    return true;
  }
  section.append(
    el("p", { class: "hint" }, "Open a row's raw values to fix the offending field, then retry it: a row that now reads is stored, as an ingest stores it; otherwise it stays here with its new reasons. To fix a whole feed, correct its profile and upload again."),
    canRetry ? el("p", {}, el("label", { for: "q-profile" }, "Profile for retries (default: the feed's last uploaded profile)"), profileFile) : null,
    message, table);
  await load();
  return section;
}

async function agreements(me) {
  const section = el("section", { id: "agreements", "aria-label": "Sharing agreements" }, el("h2", {}, "Sharing agreements"));
  const table = el("table", { id: "agreement-table" });
  const message = el("p", { id: "agreement-message", role: "status" });
  const grantee = el("input", { id: "a-grantee", required: true, placeholder: "clackmerco, group:ID or public" });
  const precision = el("select", { id: "a-precision" }, ["exact", "block", "h3:9", "h3:8", "h3:7", "h3:6", "jurisdiction"].map((p) => el("option", { value: p }, p)));
  const fields = el("input", { id: "a-fields", value: "id,offences,occurred,location", placeholder: "id,offences,occurred,location" });
  const offences = el("input", { id: "a-offences", value: "all", placeholder: "all, property, part1 or NIBRS codes" });
  const purposes = el("input", { id: "a-purposes", value: "analysis", placeholder: "analysis, operations, investigation" });
  const delay = el("input", { id: "a-delay", placeholder: "24h or 7d" });
  const reference = el("input", { id: "a-reference", placeholder: "MoU of 2026-03-01" });
  const replaces = el("select", { id: "a-replaces" }, el("option", { value: "" }, "nothing (a new agreement)"));
  const form = el("form", { id: "agreement-form", "aria-label": "New agreement" }, el("h3", {}, "New agreement"),
    el("label", { for: "a-grantee" }, "Grantee"), grantee,
    el("label", { for: "a-offences" }, "Offences (comma separated)"), offences,
    el("label", { for: "a-precision" }, "Location precision"), precision,
    el("label", { for: "a-fields" }, "Fields (comma separated)"), fields,
    el("label", { for: "a-purposes" }, "Purposes (comma separated)"), purposes,
    el("label", { for: "a-delay" }, "Delay"), delay,
    el("label", { for: "a-reference" }, "Reference (the decision it rests on)"), reference,
    el("label", { for: "a-replaces" }, "Replaces (revoke it first when saving)"), replaces,
    el("button", { type: "submit" }, "Create agreement"));
  // The live preview of the draft in the form, before it is saved (POST .../preview).
  const draftPreview = el("div", { id: "draft-preview", "aria-live": "polite" });
  const draftBox = (await has("POST", "/api/v1/agreements/preview"))
    ? el("div", { class: "preview" }, el("h3", {}, "Preview of this draft"),
      el("p", { class: "hint" }, "What the grantee would see once the draft is saved and approved; nothing is saved."), draftPreview)
    : null;
  const previewFor = el("input", { id: "p-grantee", placeholder: "clackmerco" });
  const preview = el("div", { id: "preview", "aria-live": "polite" });
  const previewBox = el("div", { class: "preview" }, el("h3", {}, "Preview: what a grantee sees now"),
    el("label", { for: "p-grantee" }, "Grantee"), previewFor, preview);
  const list = (input) => input.value.split(",").map((v) => v.trim()).filter(Boolean);
  /** The draft in the form, as the API takes it (the public gets its release policy's defaults). */
  const draft = () => {
    const who = grantee.value.trim();
    const body = { grantee: who, offences: list(offences), reference: reference.value };
    if (who !== "public") Object.assign(body, { precision: precision.value, fields: list(fields), purposes: list(purposes) });
    if (delay.value.trim()) body.delay = delay.value.trim();
    return body;
  };
  /** The preview's counts, reasons and sample in `host`; `id` names the visible-count line. */
  const showResult = (host, d, id, what) => host.replaceChildren(
    el("p", { id }, `${d.visible} of ${d.total} records visible to ${d.grantee}${what}`),
    el("ul", {}, Object.entries(d.hidden).map(([why, n]) => el("li", {}, `${n} hidden: ${why}`))),
    el("p", { class: "hint" }, d.sample_kind === "stand-ins" ? "Sample (synthetic stand-ins of the same shape):" : "Sample:"),
    el("pre", { tabindex: "0" }, JSON.stringify(d.sample.slice(0, 3), null, 1)));
  let drafted = 0;
  async function showDraft() {
    if (!draftBox) return;
    const mine = ++drafted;
    if (!grantee.value.trim()) return draftPreview.replaceChildren(el("p", { class: "hint" }, "Name a grantee to preview the draft."));
    const body = { ...draft(), sample: 5, ...(replaces.value ? { replaces: replaces.value } : {}) };
    const result = await api("/api/v1/agreements/preview", { method: "POST", body });
    if (mine !== drafted) return; // a newer draft was asked for
    if (!result.ok) return draftPreview.replaceChildren(el("p", { role: "alert" }, errorText(result)));
    if (!result.data.valid) {
      return draftPreview.replaceChildren(el("p", {}, "This draft could not be saved as it is:"),
        el("ul", { id: "draft-problems" }, result.data.problems.map((p) => el("li", {}, p))));
    }
    showResult(draftPreview, result.data.preview, "draft-visible", " under this draft");
  }
  let draftTimer = null;
  for (const input of [grantee, offences, precision, fields, purposes, delay, replaces]) {
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => { clearTimeout(draftTimer); draftTimer = setTimeout(showDraft, 300); });
  }

  async function load() {
    const result = await api(`/api/v1/agreements`);
    if (!result.ok) return failed(message, result);
    table.replaceChildren(el("caption", {}, `Agreements of ${me.user.agency}`),
      el("thead", {}, el("tr", {}, ["Grantee", "Precision", "Fields", "Status", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, result.data.agreements.map((a) => el("tr", { "data-id": a.id, "data-grantee": a.grantee },
        el("td", {}, a.grantee), el("td", {}, a.precision), el("td", {}, a.fields.join(", ")), el("td", {}, a.status),
        el("td", {}, a.status === "revoked" || a.status === "expired" ? "" : el("button", { type: "button", class: "revoke", "aria-label": `Revoke the agreement with ${a.grantee}`, onclick: () => revoke(a) }, "Revoke"))))));
    const chosen = replaces.value;
    replaces.replaceChildren(el("option", { value: "" }, "nothing (a new agreement)"),
      ...result.data.agreements.filter((a) => a.status !== "revoked" && a.status !== "expired")
        .map((a) => el("option", { value: a.id }, `${a.grantee}: ${a.precision}, ${(a.offences || ["all"]).join(", ")}`)));
    replaces.value = [...replaces.options].some((o) => o.value === chosen) ? chosen : "";
    await showPreview();
    return true;
  }
  async function revoke(agreement) {
    const result = await api(`/api/v1/agreements/${agreement.id}/revoke`, { method: "POST", body: { reason: "revoked in the admin page" } });
    await reloadThenSay(load, message, result.ok ? `Revoked the agreement with ${agreement.grantee}.` : errorText(result));
  }
  async function showPreview() {
    const who = previewFor.value.trim();
    if (!who) return preview.replaceChildren(el("p", { class: "hint" }, "Name a grantee to preview."));
    const result = await api(`/api/v1/agreements/preview?${query({ grantee: who, sample: 5 })}`);
    if (!result.ok) return preview.replaceChildren(el("p", { role: "alert" }, errorText(result)));
    showResult(preview, result.data, "preview-visible", "");
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = draft();
    const result = await api("/api/v1/agreements", { method: "POST", body });
    previewFor.value = body.grantee;
    await reloadThenSay(load, message, result.ok ? `Created; status ${result.data.status}.` : errorText(result));
  });
  let timer = null;
  previewFor.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(showPreview, 300); });
  section.append(message, table, el("div", { class: "columns" }, form, draftBox, previewBox));
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
