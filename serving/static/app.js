// The marketer page. Holds no data of its own: everything comes from the API with the user's key,
// and the list shown is the CSV that POST /export returns, which is also what "Download" saves; a
// campaign's download is what POST /campaigns returns for it. Charts are SVG drawn here (no library,
// no CDN), so the page works offline under the service's Content-Security-Policy (no inline styles:
// colours are classes of style.css).
"use strict";

const KEY_STORE = "clv-api-key";
const SHOWN_ROWS = 200;
const $ = (id) => document.getElementById(id);
const money = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const pct = (x) => `${(100 * x).toFixed(0)}%`;
const SVG_NS = "http://www.w3.org/2000/svg";
const SERIES = 6; // colours in style.css (.series-0 ... .series-5)
let lastCsv = null;
let summary = null;
let economics = null; // GET /economics with the retention what-if, or null when it has none
let economicsProblem = "";
let economicsRequest = 0;
let economicsTimer = null;

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
  await Promise.all([loadList(), loadCampaigns(), loadEconomics()]);
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
    (t.lapsed_p_alive === null
      ? "Lapsed: nobody, as the log shows no drop-out: whether a customer has left is not known. " +
        `New: one order so far, placed within ${t.new_customer_days} days. `
      : `Lapsed: probability still active below ${pct(t.lapsed_p_alive)} and no order within the customer's ` +
        `usual gap (for a one-time buyer, the probability alone). New: one order so far, placed within ` +
        `${t.new_customer_days} days, and probability still active at least ${pct(t.lapsed_p_alive)}. `) +
    `Change these lines in [targeting] of clv.toml.`;
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

// Charts share one frame: a 520 x 220 viewBox with room for axis labels on the left and below.
const CHART = { W: 520, H: 220, left: 40, right: 10, bottom: 30, top: 10 };

// An SVG element with attributes (and a tooltip), appended to `parent`.
function svgChild(parent, tag, attrs, tooltip) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  if (tooltip) {
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = tooltip;
    el.append(title);
  }
  parent.append(el);
  return el;
}

function svgText(svg, x, y, text, anchor = "middle") {
  svgChild(svg, "text", { x, y, "text-anchor": anchor }).textContent = text;
}

function drawHistogram(h) {
  const svg = $("histogram");
  svg.replaceChildren();
  if (!h.counts.length) return;
  const { W, H, left, right, bottom, top } = CHART;
  const max = Math.max(...h.counts, 1);
  const width = (W - left - right) / h.counts.length;
  h.counts.forEach((count, i) => {
    const height = (H - bottom - top) * count / max;
    svgChild(svg, "rect", {
      x: left + i * width + 1, y: H - bottom - height, width: Math.max(width - 2, 1), height, class: "bar",
    }, `${money.format(h.edges[i])}–${money.format(h.edges[i + 1])}: ${count} customers`);
  });
  svgText(svg, left, H - bottom + 14, "0");
  svgText(svg, W - right, H - bottom + 14, money.format(h.edges[h.edges.length - 1]), "end");
  svgText(svg, left - 4, top + 8, money.format(max), "end");
  svgText(svg, (W + left) / 2, H - 4, "predicted CLV in the horizon");
  $("histogram-note").textContent = h.overflow ? `${h.overflow} customers above the right edge (top 1%).` : "";
}

// CLV:CAC per channel as bars on a log scale: the cheap channels' ratios are tens of times the paid
// ones', which a linear axis would flatten to nothing. A channel without spend has no ratio.
function drawRatios(channels) {
  const svg = $("clv-cac");
  svg.replaceChildren();
  if (!channels.length) return;
  const { W, H, left, right, bottom, top } = CHART;
  const ratios = channels.map((c) => c.clv_to_cac).filter((r) => r !== null && r > 0);
  const lo = Math.min(1, ...ratios) / 2, hi = Math.max(3, ...ratios) * 1.3;
  const y = (r) => H - bottom - (H - bottom - top) * Math.log(r / lo) / Math.log(hi / lo);
  for (const tick of [0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000]) {
    if (tick < lo || tick > hi) continue;
    svgChild(svg, "line", { x1: left, x2: W - right, y1: y(tick), y2: y(tick), class: tick === 3 ? "ref" : "grid" });
    svgText(svg, left - 4, y(tick) + 3, tick === 3 ? "3:1" : `${tick}`, "end");
  }
  const width = (W - left - right) / channels.length;
  channels.forEach((c, i) => {
    const x = left + i * width;
    svgText(svg, x + width / 2, H - bottom + 14, c.acquisition_channel);
    if (c.clv_to_cac === null || !(c.clv_to_cac > 0)) {
      svgText(svg, x + width / 2, H - bottom - 4, c.spend === null ? "spend unknown" : "no spend");
      return;
    }
    const top_ = y(c.clv_to_cac);
    svgChild(svg, "rect", {
      x: x + width * 0.2, y: top_, width: width * 0.6, height: H - bottom - top_, class: "bar ratio",
    }, `${c.acquisition_channel}: CLV:CAC ${c.clv_to_cac.toFixed(2)} (CLV ${money.format(c.clv)}, CAC ${c.cac.toFixed(2)})`);
    svgText(svg, x + width / 2, top_ - 3, c.clv_to_cac.toFixed(1));
  });
  svgText(svg, (W + left) / 2, H - 2, "CLV:CAC (log scale; the dashed line is 3:1)");
}

// Cumulative revenue per customer by months since each cohort's first month, one line per channel.
function drawCurves(curves) {
  const svg = $("cohort-curves");
  svg.replaceChildren();
  const legend = $("curves-legend");
  legend.replaceChildren();
  if (!curves.length) return;
  const { W, H, left, right, bottom, top } = CHART;
  // A late month rests on the few oldest cohorts: a point with under a quarter of the channel's customers
  // would swing with a handful of them, so the line stops before it.
  const first = {};
  for (const p of curves) if (p.month_offset === 0) first[p.acquisition_channel] = p.customers;
  curves = curves.filter((p) => p.customers >= (first[p.acquisition_channel] || 0) / 4);
  const channels = [...new Set(curves.map((p) => p.acquisition_channel))];
  const maxX = Math.max(1, ...curves.map((p) => p.month_offset));
  const maxY = Math.max(1, ...curves.map((p) => p.revenue_per_customer));
  const x = (m) => left + (W - left - right) * m / maxX;
  const y = (v) => H - bottom - (H - bottom - top) * v / maxY;
  channels.forEach((channel, i) => {
    const points = curves.filter((p) => p.acquisition_channel === channel);
    svgChild(svg, "polyline", {
      points: points.map((p) => `${x(p.month_offset).toFixed(1)},${y(p.revenue_per_customer).toFixed(1)}`).join(" "),
      class: `curve series-${i % SERIES}`,
    }, `${channel}: ${money.format(points[points.length - 1].revenue_per_customer)} per customer after ` +
      `${points[points.length - 1].month_offset} months`);
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.className = `series-${i % SERIES}`;
    item.append(swatch, channel);
    legend.append(item);
  });
  svgText(svg, left, H - bottom + 14, "0");
  svgText(svg, W - right, H - bottom + 14, `${maxX}`, "end");
  svgText(svg, left - 4, top + 8, money.format(maxY), "end");
  svgText(svg, (W + left) / 2, H - 4, "months since the cohort's first month");
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
  // Customer by customer, from GET /economics for the lift shown (blank while it is being asked).
  const w = currentWhatIf();
  const each = w ? [money.format(w.value_before), money.format(w.value_after * aov),
    change(w.value_before, w.value_after * aov)] : ["", "", ""];
  const numeric = [false, true, true, true];
  body.replaceChildren(
    row(["today", money.format(textbookBase), money.format(modelBase), each[0]], numeric),
    row(["what-if", money.format(textbookNew), money.format(modelNew), each[1]], numeric),
    row(["change", change(textbookBase, textbookNew), change(modelBase, modelNew), each[2]], numeric),
  );
  const problem = economicsProblem || notReached(w);
  $("model-what-if-note").textContent = problem ? `Customer by customer: ${problem}` : "";
}

// The what-if of GET /economics if it answers for the retention lift now in the form.
function currentWhatIf() {
  const w = economics && economics.retention_what_if;
  return w && w.lift_points === Number($("retention-up").value || 0) ? w : null;
}

async function loadCampaigns() {
  $("campaigns-error").textContent = "";
  let body;
  try {
    body = await (await api("/campaigns", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    })).json();
  } catch (error) {
    $("campaigns-error").textContent = error.message;
    return;
  }
  $("campaign-value-header").textContent = summary.model.value_unit === "orders" ? "predicted orders" : "predicted value";
  $("campaigns").querySelector("tbody").replaceChildren(...Object.entries(body.campaigns).map(([name, c]) => {
    const tr = row([name, money.format(c.rows), money.format(c.predicted_clv), money.format(c.expected_value)],
      [false, true, true, true]);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Download CSV";
    button.dataset.campaign = name;
    button.addEventListener("click", () => downloadCampaign(name, button));
    const cell = document.createElement("td");
    cell.append(button);
    tr.append(cell);
    return tr;
  }));
  // Notes say what they are about ("left out", "in abandoned_cart instead"); not all are lists left out.
  $("campaigns-notes").textContent = body.notes.map((n) => `Note: ${n}.`).join(" ");
}

async function downloadCampaign(name, button) {
  button.disabled = true;
  $("campaigns-error").textContent = "";
  try {
    const response = await api("/campaigns", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ campaign: name }),
    });
    save(await response.text(), `clv-${name}.csv`);
  } catch (error) {
    $("campaigns-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// GET /economics with the form's retention lift; the newest answer wins when several are in flight.
async function loadEconomics() {
  const request = ++economicsRequest;
  const lift = Number($("retention-up").value || 0);
  let body = null, problem = "";
  try {
    body = await (await api(`/economics?retention_lift=${encodeURIComponent(lift)}`)).json();
  } catch (error) {
    problem = error.message;
  }
  if (request !== economicsRequest) return;
  economics = body;
  economicsProblem = problem;
  renderAcquisition();
  renderWhatIf();
}

function renderAcquisition() {
  const body = $("channels").querySelector("tbody");
  if (!economics) {
    $("acquisition-status").textContent = economicsProblem;
    drawRatios([]);
    drawCurves([]);
    body.replaceChildren();
    $("retention-what-if").textContent = "";
    return;
  }
  const e = economics;
  $("acquisition-status").textContent = `Customers by the channel that brought them, at ${e.as_of}; ` +
    (e.margin === null ? "no margin is configured ([train] margin), so CLV:CAC and profit count revenue."
      : `CLV:CAC and profit count a margin of ${pct(e.margin)}.`) +
    " CLV per customer: revenue so far plus predicted value in the horizon.";
  drawRatios(e.by_channel);
  drawCurves(e.curves);
  const number = (x, digits = 2) => (x === null ? "" : x.toFixed(digits));
  const whole = (x) => (x === null ? "" : money.format(x));
  // A channel missing from the spend file: its spend is unknown, not 0 (and "not yet" would be a claim).
  body.replaceChildren(...e.by_channel.map((c) => row(c.spend === null ? [
    c.acquisition_channel, whole(c.customers), "unknown", "unknown", whole(c.clv), "unknown", "unknown", "unknown",
  ] : [
    c.acquisition_channel, whole(c.customers), whole(c.spend), number(c.cac), whole(c.clv),
    c.clv_to_cac === null ? "no spend" : number(c.clv_to_cac), c.payback_months === null ? "not yet" : number(c.payback_months, 0),
    whole(c.profit_clv),
  ], [false, true, true, true, true, true, true, true])));
  $("economics-notes").textContent = e.notes.map((n) => `Note: ${n}`).join(" ");
  const w = e.retention_what_if;
  const missed = notReached(w);
  const share = w.value_change_share === null ? "" : ` (${w.value_change_share >= 0 ? "+" : ""}${(100 * w.value_change_share).toFixed(1)}%)`;
  $("retention-what-if").textContent =
    `Retention up ${w.lift_points} points (${money.format(w.contacted)} of ${money.format(w.customers)} customers ` +
    `reached): predicted value ${money.format(w.value_before)} → ${money.format(w.value_after)}${share}; ` +
    `${e.margin === null ? "profit (as revenue)" : "profit"} ${money.format(w.profit_before)} → ` +
    `${money.format(w.profit_after)} (${w.profit_change >= 0 ? "+" : ""}${money.format(w.profit_change)}, after ` +
    `${money.format(w.retention_spend)} retention spend: [economics] retention_cost per customer reached).` +
    (missed ? ` ${missed}` : "");
}

// Why a retention what-if (GET /economics) left customers out: empty where it left none.
function notReached(w) {
  return w && w.p_alive_unknown ? `${money.format(w.p_alive_unknown)} customers with an empty p_alive were not ` +
    "reached: the log shows no drop-out, so whether they are still customers, and what keeping them adds, is not " +
    "known." : "";
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
  const numeric = header.map((name, i) => name !== "customer_id" && rows.some((cells) => isDecimal(cells[i])));
  $("top-list").querySelector("thead").replaceChildren(row(header));
  $("top-list").querySelector("tbody").replaceChildren(...rows.slice(0, SHOWN_ROWS).map(
    (cells) => row(cells.map((text, i) => (numeric[i] ? shownNumber(header[i], text) : text)), numeric)));
  $("list-status").textContent = `${money.format(rows.length)} customers` +
    (rows.length > SHOWN_ROWS ? ` (first ${SHOWN_ROWS} shown; the download has all)` : "");
  $("download").disabled = false;
}

// The table shows numbers as a marketer reads them (the download keeps the CSV's full precision): the
// list showed 6617.4542186511035 and a churn of 0.028844185250345728.
const decimals = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const PROBABILITIES = new Set(["churn_prob", "p_alive"]);
const isDecimal = (text) => /^-?\d+(\.\d+)?(e-?\d+)?$/i.test(text ?? "");

function shownNumber(name, text) {
  if (!isDecimal(text)) return text;
  const x = Number(text);
  if (!PROBABILITIES.has(name)) return (/^-?\d+$/.test(text) ? money : decimals).format(x);
  // As the reasons say it: a probability strictly between 0 and 1 never reads as a certainty.
  if (x > 0 && x < 0.005) return "<1%";
  if (x < 1 && x >= 0.995) return ">99%";
  return pct(x);
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

function save(text, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
}

function download() {
  if (lastCsv !== null) save(lastCsv, "clv-export.csv");
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
$("what-if").addEventListener("input", () => {
  renderWhatIf();
  // One request once typing pauses, not one per keystroke.
  clearTimeout(economicsTimer);
  economicsTimer = setTimeout(loadEconomics, 300);
});
start();
