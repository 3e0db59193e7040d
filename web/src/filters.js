// The filter panel shared by the analyst and public maps: time range, categories, agencies.
import { el, monthStart, nextMonth } from "./common.js";

export const CATEGORIES = ["person", "property", "society"];

/**
 * Build the filters in `host`; onChange() is called after each change.
 *
 * `offenceTypes` ([code, name, crime_against] of each NIBRS offence, from the page's
 * configuration) fill the offence-type choice; `present()`, when given, answers the
 * codes the viewer's data holds, and is asked the first time the choice is opened
 * (never while the map is being drawn), which then lists only those.
 */
export function filterPanel(host, { months, agencies = [], onChange, offenceTypes = [], present = null }) {
  const from = el("input", { type: "range", id: "f-from", min: 0, max: Math.max(months.length - 1, 0), value: 0, step: 1 });
  const to = el("input", { type: "range", id: "f-to", min: 0, max: Math.max(months.length - 1, 0), value: Math.max(months.length - 1, 0), step: 1 });
  const label = el("output", { id: "f-range", for: "f-from f-to", "aria-live": "polite" });
  const categories = CATEGORIES.map((c) =>
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "category", value: c, checked: true }), ` ${c}`));
  const agencyBoxes = agencies.map((a) =>
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "agency", value: a, checked: true }), ` ${a}`));
  const categoryOf = new Map(offenceTypes.map(([code, , against]) => [code, against]));
  const offence = el("select", { id: "f-offence" });
  const fillOffences = (codes) => {
    const chosen = offence.value;
    const groups = CATEGORIES.map((c) => el("optgroup", { label: `Against ${c}` },
      offenceTypes.filter(([code, , against]) => against === c && (!codes || codes.has(code)))
        .map(([code, name]) => el("option", { value: code }, name))));
    offence.replaceChildren(el("option", { value: "" }, "All offence types"), ...groups.filter((g) => g.children.length));
    offence.value = [...offence.options].some((o) => o.value === chosen) ? chosen : "";
  };
  fillOffences(null);
  let narrowed = false;
  const narrow = async () => {
    if (narrowed || !present) return;
    narrowed = true;
    const codes = await present();
    if (codes) fillOffences(codes);
    offence.dataset.narrowed = codes ? "1" : "0";
  };
  for (const event of ["focus", "pointerdown"]) offence.addEventListener(event, narrow);
  offence.addEventListener("change", () => changed());
  const show = () => {
    if (+from.value > +to.value) to.value = from.value;
    label.textContent = months.length ? `${months[+from.value]} to ${months[+to.value]}` : "no data";
  };
  let timer = null;
  const changed = () => {
    show();
    clearTimeout(timer);
    timer = setTimeout(onChange, 150);
  };
  for (const input of [from, to]) input.addEventListener("input", changed);
  host.append(
    el("fieldset", {}, el("legend", {}, "Time range"),
      el("label", { for: "f-from" }, "From month"), from,
      el("label", { for: "f-to" }, "To month"), to, label),
    el("fieldset", { onchange: changed }, el("legend", {}, "Crime against"), categories),
    ...(offenceTypes.length ? [el("label", { for: "f-offence" }, "Offence type"), offence] : []),
    ...(agencies.length ? [el("fieldset", { onchange: changed }, el("legend", {}, "Agencies"), agencyBoxes)] : []),
  );
  show();
  return {
    /** The query parameters of the current filters. */
    params() {
      const params = {};
      if (months.length) {
        params.since = monthStart(months[+from.value]);
        params.until = monthStart(nextMonth(months[+to.value]));
      }
      const cats = [...host.querySelectorAll("input[name=category]:checked")].map((i) => i.value);
      // One offence type, within the ticked categories (an unticked one rules it out).
      const code = offence.value;
      const ruledOut = Boolean(code) && !cats.includes(categoryOf.get(code));
      if (code && !ruledOut) params.offence = [code];
      else if (cats.length < CATEGORIES.length) params.offence = cats;
      const ags = [...host.querySelectorAll("input[name=agency]:checked")].map((i) => i.value);
      if (ags.length < agencies.length) params.agency = ags;
      // Nothing ticked: nothing to ask the server for.
      params.empty = !cats.length || ruledOut || (agencies.length > 0 && !ags.length);
      return params;
    },
    /** The months currently selected. */
    months() {
      return months.slice(+from.value, +to.value + 1);
    },
  };
}
