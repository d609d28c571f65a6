"""The built-in page's script: sign in, poll the panel endpoint, draw with plotly, drill down."""

# State lives in the URL hash (#d=uid&u=unit&from=&to=&as_of=) so back/forward and links work.
PAGE_SCRIPT = r"""
const $ = s => document.querySelector(s);
const POLL_MS = 2000;
const S = {dashboards: [], tz: "Asia/Shanghai", home: null, admin: false, names: {},
           busy: false, drawn: null, view: {}};
const tok = () => localStorage.getItem("jiandu.token") || "";

async function api(path) {
  const r = await fetch(path, {headers: {Authorization: "Bearer " + tok()}});
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) { signOut("令牌无效或已过期，请重新登录"); throw new Error("未登录"); }
  if (!r.ok) throw new Error(body.detail || ("HTTP " + r.status));
  return body;
}

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  return {d: h.get("d") || S.dashboards[0].uid, u: h.get("u") || S.home,
          from: h.get("from") || "", to: h.get("to") || "", as_of: h.get("as_of") || ""};
}
function go(change) {
  const v = Object.assign({}, S.view, change);
  location.hash = new URLSearchParams(Object.entries(v).filter(([, x]) => x)).toString();
}

function localTime(iso, withSeconds) {
  const t = new Date(iso).toLocaleString("sv-SE", {timeZone: S.tz});  // "2025-01-01 08:00:00"
  return withSeconds ? t : t.slice(0, 16);
}
function fmt(v, unit) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "string") return /^\d{4}-\d\d-\d\dT/.test(v) ? localTime(v, true) : v;
  if (unit === "s") return v < 60 ? v.toFixed(1) + " 秒" : v < 3600 ? (v / 60).toFixed(1) + " 分钟"
    : (v / 3600).toFixed(1) + " 小时";
  const s = v.toLocaleString("zh-CN", {maximumFractionDigits: 1});
  return unit === "percent" ? s + "%" : s;
}
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));

const LAYOUT = {margin: {l: 50, r: 10, t: 6, b: 40}, font: {size: 12,
  family: '"Noto Sans CJK SC","Microsoft YaHei",sans-serif'}, legend: {orientation: "h", y: -0.18},
  paper_bgcolor: "#fff", plot_bgcolor: "#fff", separators: ".,"};
const CONFIG = {displayModeBar: false, responsive: true};
const COLORS = ["#9f1d1d", "#d97706", "#2563eb", "#059669", "#7c3aed", "#db2777"];

function plot(el, traces, layout) {
  if (!el.classList.contains("chart")) { el.innerHTML = ""; el.classList.add("chart"); }
  Plotly.react(el, traces, Object.assign({}, LAYOUT, {colorway: COLORS}, layout), CONFIG);
}
function numericColumns(data) {
  return data.columns.map((c, i) => [c, i]).filter(([c, i]) => c !== "child_id" &&
    data.rows.some(r => typeof r[i] === "number"));
}

function draw(p, data, el) {
  if (!data.rows.length) { el.classList.remove("chart"); el.innerHTML = '<div class="empty">暂无数据</div>'; return; }
  const col = name => data.columns.indexOf(name);
  if (p.kind === "stat") {
    el.classList.remove("chart");
    el.innerHTML = '<div class="cards">' + data.columns.map((c, i) =>
      `<div class="card"><b>${fmt(data.rows[0][i], p.unit)}</b><span>${esc(c)}</span></div>`).join("") + "</div>";
  } else if (p.kind === "table") {
    el.classList.remove("chart");
    const shown = data.columns.map((c, i) => [c, i]).filter(([c]) => c !== "child_id");
    const link = col("child_id");
    el.innerHTML = "<table><tr>" + shown.map(([c]) => `<th>${esc(c)}</th>`).join("") + "</tr>" +
      data.rows.map(r => "<tr>" + shown.map(([c, i]) => {
        const v = fmt(r[i]);
        if (p.drill && c === "单位" && link >= 0) return `<td class="txt"><a data-unit="${esc(r[link])}">${esc(v)}</a></td>`;
        return typeof r[i] === "number" || r[i] === null ? `<td>${v}</td>` : `<td class="txt">${esc(v)}</td>`;
      }).join("") + "</tr>").join("") + "</table>";
    el.querySelectorAll("a[data-unit]").forEach(a => a.onclick = () => go({u: a.dataset.unit}));
  } else if (p.kind === "timeseries") {
    const x = data.rows.map(r => localTime(r[col("time")], true));
    const monthly = x.every(t => t.endsWith("-01 00:00:00"));  // month buckets, else minutes
    const fmtX = monthly ? "%Y年%m月" : "%H:%M";
    const ms = x.map(t => Date.parse(t.replace(" ", "T") + "Z"));  // plotly reads wall time as UTC
    // Whole months or whole minutes per tick, so no two ticks print the same label.
    const axis = {type: "date", tickformat: fmtX, automargin: true, dtick: monthly ? "M" + Math.ceil(x.length / 12)
      : Math.max(6e4, Math.ceil((ms[ms.length - 1] - ms[0]) / 8 / 6e4) * 6e4)};
    if (x.length === 1) {  // one bucket: give it room instead of a zero-width axis
      const pad = monthly ? 20 * 864e5 : 5 * 6e4;
      axis.range = [ms[0] - pad, ms[0] + pad];
    }
    plot(el, numericColumns(data).map(([c, i]) => ({x, y: data.rows.map(r => r[i]), name: c,
      type: "scatter", mode: "lines+markers", hovertemplate: `%{x|${fmtX}}<br>${c}：%{y}<extra></extra>`})),
      {xaxis: axis, yaxis: {rangemode: "tozero", automargin: true}});
  } else if (p.kind === "piechart") {
    plot(el, [{type: "pie", hole: 0.45, sort: false, labels: data.rows.map(r => r[0]),
      values: data.rows.map(r => r[1]), textinfo: "label+percent",
      hovertemplate: "%{label}：%{value}（%{percent}）<extra></extra>"}], {showlegend: true, legend: {orientation: "v"}});
  } else if (p.kind === "barchart") {
    const label = col("单位") >= 0 ? col("单位") : 0, ids = col("child_id"), horizontal = p.drill;
    const cats = data.rows.map(r => String(r[label]));
    const traces = numericColumns(data).map(([c, i]) => {
      const vals = data.rows.map(r => r[i]);
      return Object.assign({type: "bar", name: c, orientation: horizontal ? "h" : "v",
        customdata: ids >= 0 ? data.rows.map(r => r[ids]) : undefined,
        hovertemplate: `%{${horizontal ? "y" : "x"}}<br>${c}：%{${horizontal ? "x" : "y"}}<extra></extra>`},
        horizontal ? {x: vals, y: cats} : {x: cats, y: vals});
    });
    const values = {ticksuffix: p.unit === "percent" ? "%" : "", rangemode: "tozero", automargin: true};
    plot(el, traces, horizontal
      ? {yaxis: {autorange: "reversed", automargin: true}, xaxis: values, margin: Object.assign({}, LAYOUT.margin, {l: 10})}
      : {xaxis: {automargin: true}, yaxis: values});
    if (p.drill && !el.dataset.bound) {
      el.dataset.bound = "1";
      el.on("plotly_click", ev => { const u = ev.points[0].customdata; if (u) go({u}); });
    }
  }
}

function layoutGrid(dash) {
  $("#grid").innerHTML = dash.panels.map(p =>
    `<section class="panel" data-kind="${p.kind}" style="grid-column:span ${p.width};height:${p.height * 32}px">` +
    `<h2 title="${esc(p.description)}">${esc(p.title)}${p.drill ? "<small>点击单位下钻</small>" : ""}</h2>` +
    `<div class="body" id="panel-${p.id}"><div class="empty">加载中…</div></div></section>`).join("");
  S.drawn = dash.uid + "|" + S.view.u;
}

function query(p) {
  const v = S.view, q = new URLSearchParams({unit: v.u});
  if (v.from) q.set("from", v.from);
  if (v.to) q.set("to", v.to);
  if (v.as_of) q.set("as_of", new Date(v.as_of).toISOString());
  return `/v1/dashboards/${v.d}/panels/${p.id}?` + q.toString();
}

async function refresh() {
  if (!tok()) return;
  if (S.busy) { S.again = true; return; }  // one poll at a time; a view change re-polls after
  S.busy = true; S.again = false;
  const dash = S.dashboards.find(d => d.uid === S.view.d) || S.dashboards[0];
  const key = dash.uid + "|" + S.view.u;
  try {
    if (S.drawn !== key) layoutGrid(dash);
    // Draw each panel as its rows arrive; one failing panel does not blank the others.
    const results = await Promise.allSettled(dash.panels.map(p => api(query(p)).then(d => {
      if (S.drawn === key) draw(p, d, $("#panel-" + p.id));
    })));
    const failed = results.find(r => r.status === "rejected");
    if (failed) throw failed.reason;
    $("#status").className = "";
    $("#status").textContent = "已更新 " + new Date().toLocaleTimeString("zh-CN", {hour12: false}) + " · 每2秒刷新";
  } catch (e) {
    $("#status").className = "err";
    $("#status").textContent = "加载失败：" + e.message;
  } finally { S.busy = false; if (S.again) refresh(); }
}

async function name(u) {
  if (!S.names[u]) S.names[u] = (await api("/v1/units/" + encodeURIComponent(u))).name;
  return S.names[u];
}
async function crumbs() {
  const unit = await api("/v1/units/" + encodeURIComponent(S.view.u));
  S.names[unit.unit_id] = unit.name;
  const path = S.admin ? unit.path : unit.path.slice(Math.max(0, unit.path.indexOf(S.home)));
  const names = await Promise.all(path.map(name));
  $("#crumbs").innerHTML = path.map((u, i) => i === path.length - 1 ? `<b>${esc(names[i])}</b>`
    : `<a data-unit="${esc(u)}">${esc(names[i])}</a> › `).join("");
  $("#crumbs").querySelectorAll("a").forEach(a => a.onclick = () => go({u: a.dataset.unit}));
}

async function apply() {
  S.view = readHash();
  $("#tabs").innerHTML = S.dashboards.map(d =>
    `<a data-d="${d.uid}" class="${d.uid === S.view.d ? "on" : ""}">${esc(d.title)}</a>`).join("");
  $("#tabs").querySelectorAll("a").forEach(a => a.onclick = () => go({d: a.dataset.d}));
  $("#from").value = S.view.from; $("#to").value = S.view.to; $("#asof").value = S.view.as_of;
  if ($("#verified").dataset.unit !== S.view.u) { $("#verified").textContent = ""; $("#verified").dataset.unit = S.view.u; }
  try { await crumbs(); } catch (e) { $("#status").className = "err"; $("#status").textContent = e.message; }
  await refresh();
}

async function start() {
  $("#signin").hidden = true; $("#signout").hidden = false; $("#welcome").hidden = true; $("#bar").hidden = false;
  try {
    const [me, dashboards] = await Promise.all([api("/v1/me"), api("/v1/dashboards")]);
    S.dashboards = dashboards; S.tz = dashboards[0].timezone || S.tz;
    S.admin = !me.unit_id; S.home = me.unit_id || (await api("/v1/roots")).roots[0];
    $("#upload-open").hidden = !["admin", "submitter"].includes(me.role);
    $("#verify").hidden = !["admin", "auditor"].includes(me.role);
    $("#who").textContent = (me.unit_id ? me.unit_id + " · " : "") + ({admin: "管理员", viewer: "查看",
      submitter: "报送", auditor: "审计"}[me.role] || me.role);
    window.onhashchange = apply;
    await apply();
    if (!S.timer) S.timer = setInterval(refresh, POLL_MS);
  } catch (e) { $("#status").className = "err"; $("#status").textContent = e.message; }
}
function signOut(message) {
  localStorage.removeItem("jiandu.token");
  $("#signin").hidden = false; $("#signout").hidden = true; $("#bar").hidden = true;
  $("#upload-open").hidden = true; $("#upload").hidden = true; $("#verified").textContent = "";
  $("#grid").innerHTML = ""; $("#who").textContent = ""; S.drawn = null;
  $("#welcome").hidden = false;
  $("#welcome").textContent = message || "已退出。请在右上角输入访问令牌并登录。";
}

$("#signin").onsubmit = ev => {
  ev.preventDefault();
  const t = $("#token").value.trim();
  if (t) { localStorage.setItem("jiandu.token", t); start(); }
};
$("#signout").onclick = () => signOut();

// 核验账本: recompute the hash chains of the unit on screen and those below it.
$("#verify").onclick = async () => {
  const out = $("#verified"), unit = S.view.u;
  out.className = ""; out.textContent = "核验中…";
  try {
    const r = await api("/v1/audit/verify?subtree=true&unit=" + encodeURIComponent(unit));
    if (S.view.u !== unit) return;  // the view moved on meanwhile
    if (r.ok) {
      out.className = "ok";
      out.textContent = `账本完整：${r.units} 个单位，${r.rows.toLocaleString("zh-CN")} 条记录；指纹 ${r.fingerprint.slice(0, 16)}…`;
      out.title = "指纹 fingerprint " + r.fingerprint;
    } else {
      out.className = "err";
      out.textContent = `发现 ${r.breaks.length} 处断链：` + r.breaks.slice(0, 3).map(b =>
        `${b.unit_id} 第 ${b.seq} 条 ${b.problem.split(" (")[0]}`).join("；");
    }
  } catch (e) { out.className = "err"; out.textContent = "核验失败：" + e.message; }
};

// 报送文件: the template out, a filled-in file back through POST /v1/imports (all rows or none).
$("#upload-open").onclick = () => { $("#upload").hidden = false; $("#upload-result").innerHTML = ""; };
$("#upload-close").onclick = () => { $("#upload").hidden = true; };
$("#upload-template").onclick = async () => {
  const r = await fetch("/v1/templates/events.xlsx", {headers: {Authorization: "Bearer " + tok()}});
  if (!r.ok) { $("#upload-result").innerHTML = `<p class="err">模板下载失败：HTTP ${r.status}</p>`; return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob()); a.download = "报送模板.xlsx"; a.click();
  URL.revokeObjectURL(a.href);
};
$("#upload-send").onclick = async () => {
  const file = $("#upload-file").files[0], out = $("#upload-result");
  if (!file) { out.innerHTML = '<p class="err">请先选择文件</p>'; return; }
  $("#upload-send").disabled = true; out.innerHTML = "<p>正在提交…</p>";
  try {
    const r = await fetch("/v1/imports?filename=" + encodeURIComponent(file.name), {method: "POST",
      headers: {Authorization: "Bearer " + tok(), "Content-Type": "application/octet-stream"}, body: file});
    const body = await r.json().catch(() => ({}));
    if (r.status === 202) {
      out.innerHTML = `<p class="ok" id="upload-accepted">已接收 ${body.accepted} 条事件</p>`;
    } else if (r.status === 503 && body.spooled) {
      out.innerHTML = `<p class="ok">已暂存 ${body.spooled} 条：消息队列暂不可用，恢复后自动投递，无需重复提交</p>`;
    } else if (body.problems) {
      out.innerHTML = `<p class="err">${esc(body.detail)}</p><table id="upload-problems"><tr><th>行</th><th>列</th>` +
        "<th>原因</th></tr>" + body.problems.map(p => `<tr><td>${p.row || "文件"}</td>` +
        `<td>${esc(p.column || p.field)}</td><td>${esc(p.message)}</td></tr>`).join("") + "</table>";
    } else {
      out.innerHTML = `<p class="err">提交失败：${esc(body.detail || "HTTP " + r.status)}</p>`;
    }
  } catch (e) {
    out.innerHTML = `<p class="err">提交失败：${esc(e.message)}</p>`;
  } finally { $("#upload-send").disabled = false; }
};
["from", "to"].forEach(id => $("#" + id).onchange = e => go({[id]: e.target.value}));
$("#asof").onchange = e => go({as_of: e.target.value});
$("#clear").onclick = () => go({from: "", to: "", as_of: ""});
if (tok()) start(); else $("#signin").hidden = false;
"""
