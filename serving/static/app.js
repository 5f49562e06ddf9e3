// The marketer page. Holds no data of its own: everything comes from the API with the user's key,
// and the list shown is the CSV that POST /export returns, which is also what "Download" saves.
"use strict";

const KEY_STORE = "clv-api-key";
const SHOWN_ROWS = 200;
const $ = (id) => document.getElementById(id);
const money = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const pct = (x) => `${(100 * x).toFixed(0)}%`;
let lastCsv = null;
let summary = null;

function key() { return sessionStorage.getItem(KEY_STORE); }

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { ...(options.headers || {}), Authorization: `Bearer ${key()}` },
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

function showSignIn(message) {
  $("sign-in").hidden = false;
  $("content").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in-error").textContent = message || "";
}

async function start() {
  if (!key()) { showSignIn(); return; }
  try {
    summary = await (await api("/ui/api/summary")).json();
  } catch (error) {
    sessionStorage.removeItem(KEY_STORE);
    showSignIn(error.status === 403 ? "This key may not see customer lists (it needs the marketer role)."
      : error.status === 401 ? "That key is not valid." : error.message);
    return;
  }
  if (summary.loading) { setTimeout(start, 2000); return; }
  $("sign-in").hidden = true;
  $("content").hidden = false;
  $("sign-out").hidden = false;
  render();
  await loadList();
}

function render() {
  const m = summary.model;
  $("model-badge").textContent =
    `model v${m.version} · trained ${m.trained_at || "?"} · data to ${m.as_of} · horizon ${m.horizon_days} days`;
  $("quality").textContent = summary.quality;
  const served = m.served_model === "base" ? "Serves the buy-till-you-die base alone." : "";
  $("served").textContent = [served, ...(m.notes || []).map((n) => `Note: ${n}.`)].join(" ");
  const inOrders = m.value_unit === "orders";
  $("value-header").textContent = inOrders ? "predicted orders" : "predicted value";
  $("histogram-title").textContent = inOrders ? "Predicted orders per customer" : "Predicted CLV per customer";
  $("segment-rules").textContent = segmentRules(m.targeting_thresholds, inOrders);

  const body = $("segments").querySelector("tbody");
  body.replaceChildren(...summary.segments.map((s) => row([
    s.segment, s.action, money.format(s.customers), money.format(s.total_value), pct(s.mean_churn),
  ], [false, false, true, true, true])));
  body.append(row(["all", "", money.format(summary.totals.customers), money.format(summary.totals.predicted_value),
    pct(summary.totals.mean_churn)], [false, false, true, true, true]));

  drawHistogram(summary.histogram);
  for (const [id, names] of [["f-segment", summary.choices.segments], ["f-action", summary.choices.actions]]) {
    const select = $(id);
    select.replaceChildren(option("", "all"), ...names.map((n) => option(n, n)));
  }
  renderWhatIf();
}

// The lines that decide the segments (models/targeting.py), in words; [targeting] in clv.toml sets them.
function segmentRules(t, inOrders) {
  if (!t) return "";
  const unit = inOrders ? " orders" : "";
  const amount = inOrders ? (x) => x.toFixed(1) : (x) => money.format(x);
  return `High value: predicted value in the top ${pct(1 - t.high_value_quantile)} ` +
    `(at least ${amount(t.high_value_clv)}${unit}). At risk: churn risk at or above ` +
    `${pct(t.at_risk_churn_prob)}, or no order for more than ${t.overdue_factor}× the customer's usual gap ` +
    `with churn risk at least ${pct(t.overdue_churn_prob)}. ` +
    `Valuable: high value, or past ${inOrders ? "orders" : "revenue"} in the top ` +
    `${pct(1 - t.valuable_history_quantile)} (at least ${amount(t.valuable_history_revenue)}${unit}). ` +
    `Lapsed: probability still active below ${pct(t.lapsed_p_alive)}. New: first order within ` +
    `${t.new_customer_days} days. Change these lines in [targeting] of clv.toml.`;
}

function row(cells, numeric = []) {
  const tr = document.createElement("tr");
  cells.forEach((text, i) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (numeric[i]) td.className = "num";
    tr.append(td);
  });
  return tr;
}

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

function drawHistogram(h) {
  const svg = $("histogram");
  svg.replaceChildren();
  if (!h.counts.length) return;
  const W = 520, H = 220, left = 40, bottom = 30, top = 10;
  const max = Math.max(...h.counts, 1);
  const width = (W - left - 10) / h.counts.length;
  const ns = "http://www.w3.org/2000/svg";
  h.counts.forEach((count, i) => {
    const r = document.createElementNS(ns, "rect");
    const height = (H - bottom - top) * count / max;
    r.setAttribute("x", left + i * width + 1);
    r.setAttribute("y", H - bottom - height);
    r.setAttribute("width", Math.max(width - 2, 1));
    r.setAttribute("height", height);
    r.setAttribute("class", "bar");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${money.format(h.edges[i])}–${money.format(h.edges[i + 1])}: ${count} customers`;
    r.append(title);
    svg.append(r);
  });
  const label = (x, y, text, anchor = "middle") => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("text-anchor", anchor);
    t.textContent = text;
    svg.append(t);
  };
  label(left, H - bottom + 14, "0");
  label(W - 10, H - bottom + 14, money.format(h.edges[h.edges.length - 1]), "end");
  label(left - 4, top + 8, money.format(max), "end");
  label((W + left) / 2, H - 4, "predicted CLV in the horizon");
  $("histogram-note").textContent = h.overflow ? `${h.overflow} customers above the right edge (top 1%).` : "";
}

// Expected active years within a horizon of `years` under a constant yearly churn rate c.
function activeYears(churn, years) {
  const rate = -Math.log(1 - churn);
  return (1 - Math.exp(-rate * years)) / rate;
}

function renderWhatIf() {
  const t = summary.textbook;
  const body = $("what-if-table").querySelector("tbody");
  if (!t) { $("textbook").textContent = "This model carries no textbook summary."; body.replaceChildren(); return; }
  $("textbook").textContent =
    `Textbook formula for the base: average order value ${money.format(t.average_order_value)} × ` +
    `${t.orders_per_year.toFixed(2)} orders a year × ${t.lifespan_years.toFixed(1)} years of lifespan ` +
    `(yearly churn ${pct(t.yearly_churn)}) = ${money.format(t.basic_clv_lifetime)} per customer, ` +
    `${money.format(t.basic_clv_lifetime * t.customers)} for ${money.format(t.customers)} customers.`;
  const up = Number($("retention-up").value || 0) / 100;
  const aov = 1 + Number($("aov-up").value || 0) / 100;
  const churn = Math.min(Math.max(t.yearly_churn - up, 0.01), 0.99);
  const years = t.horizon_days / 365;
  const textbookBase = t.basic_clv_lifetime * t.customers;
  const textbookNew = textbookBase * aov * (t.yearly_churn / churn);
  const modelBase = summary.totals.predicted_value;
  const modelNew = modelBase * aov * (activeYears(churn, years) / activeYears(t.yearly_churn, years));
  const change = (a, b) => `${b >= a ? "+" : ""}${(100 * (b / a - 1)).toFixed(1)}%`;
  body.replaceChildren(
    row(["today", money.format(textbookBase), money.format(modelBase)], [false, true, true]),
    row(["what-if", money.format(textbookNew), money.format(modelNew)], [false, true, true]),
    row(["change", change(textbookBase, textbookNew), change(modelBase, modelNew)], [false, true, true]),
  );
}

function filters() {
  const value = (id) => $(id).value.trim();
  const spec = {};
  if (value("f-segment")) spec.segment = [value("f-segment")];
  if (value("f-action")) spec.action = [value("f-action")];
  if (value("f-min-clv")) spec.min_clv = Number(value("f-min-clv"));
  if (value("f-churn-min")) spec.churn_min = Number(value("f-churn-min"));
  if (value("f-churn-max")) spec.churn_max = Number(value("f-churn-max"));
  if (value("f-top")) spec.top = value("f-top");
  return spec;
}

async function loadList() {
  $("list-error").textContent = "";
  $("download").disabled = true;
  $("list-status").textContent = "loading…";
  try {
    const response = await api("/export", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(filters()),
    });
    lastCsv = await response.text();
  } catch (error) {
    lastCsv = null;
    $("list-status").textContent = "";
    $("list-error").textContent = error.message;
    return;
  }
  const [header, ...rows] = parseCsv(lastCsv);
  $("top-list").querySelector("thead").replaceChildren(row(header));
  $("top-list").querySelector("tbody").replaceChildren(...rows.slice(0, SHOWN_ROWS).map((cells) => row(cells)));
  $("list-status").textContent = `${money.format(rows.length)} customers` +
    (rows.length > SHOWN_ROWS ? ` (first ${SHOWN_ROWS} shown; the download has all)` : "");
  $("download").disabled = false;
}

// RFC 4180: fields may be quoted, with "" for a quote inside (the reason column has commas).
function parseCsv(text) {
  const rows = [];
  let fields = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { fields.push(field); field = ""; }
    else if (c === "\n") { fields.push(field); rows.push(fields); fields = []; field = ""; }
    else if (c !== "\r") field += c;
  }
  if (field || fields.length) { fields.push(field); rows.push(fields); }
  return rows;
}

function download() {
  if (lastCsv === null) return;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([lastCsv], { type: "text/csv" }));
  link.download = "clv-export.csv";
  document.body.append(link);
  link.click();
  link.remove();
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORE, $("key").value.trim());
  $("key").value = "";
  start();
});
$("sign-out").addEventListener("click", () => { sessionStorage.removeItem(KEY_STORE); showSignIn(); });
$("filters").addEventListener("submit", (event) => { event.preventDefault(); loadList(); });
$("download").addEventListener("click", download);
$("what-if").addEventListener("input", renderWhatIf);
start();
