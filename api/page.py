"""The built-in live page served at `/` (no CDN: everything inline)."""

PAGE_HTML = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>监督 · 全省总览</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#a11;color:#fff;padding:10px 20px;display:flex;gap:16px;align-items:center}
header h1{font-size:18px;margin:0} main{padding:16px 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#fff;border-radius:6px;padding:10px 12px;box-shadow:0 1px 2px #0002}
.card b{display:block;font-size:24px} .card span{color:#666;font-size:13px}
table{border-collapse:collapse;background:#fff;margin-top:16px;width:100%}
td,th{border-bottom:1px solid #eee;padding:6px 8px;text-align:right} td:first-child,th:first-child{text-align:left}
a{color:#a11;cursor:pointer} #err{color:#a11}
</style></head><body>
<header><h1>监督 · 纪检监察报送统计</h1>
<input id="token" type="password" placeholder="令牌 (token)" size="30">
<button id="signin">登录</button><span id="where"></span><span id="err"></span></header>
<main><div class="cards" id="cards"></div><table id="children"></table></main>
<script>
const HEAD = [["petitions.received","受理信访举报"],["clues.registered","受理问题线索"],
 ["clues.disposed","处置问题线索"],["cases.filed","立案"],["cases.closed","结案"],
 ["sanctions.persons","处分人数"],["four_forms.total","四种形态人次"],
 ["four_forms.form1.share","第一种形态占比(%)"],["tasks.completion_rate","任务完成率(%)"],
 ["suggestions.on_time_rate","按期办结率(%)"]];
let unit = null;
const tok = () => localStorage.getItem("jiandu.token") || "";
async function api(path){
  const r = await fetch(path,{headers:{Authorization:"Bearer "+tok()}});
  if(!r.ok) throw new Error((await r.json()).detail || r.status);
  return r.json();
}
async function refresh(){
  try{
    if(!unit){ const me = await api("/v1/me"); unit = me.unit_id || (await api("/v1/roots")).roots[0]; }
    const data = await api("/v1/indicators?unit="+encodeURIComponent(unit)+"&group_by=child");
    const total = await api("/v1/indicators?unit="+encodeURIComponent(unit));
    const t = total.rows[0].indicators;
    document.getElementById("where").textContent = total.rows[0].label;
    document.getElementById("cards").innerHTML = HEAD.map(([k,l]) =>
      `<div class="card"><b>${t[k] ?? "—"}</b><span>${l}</span></div>`).join("");
    document.getElementById("children").innerHTML = "<tr><th>下级单位</th>" +
      HEAD.map(([,l]) => `<th>${l}</th>`).join("") + "</tr>" +
      data.rows.map(r => `<tr><td><a data-u="${r.key}">${r.label}</a></td>` +
        HEAD.map(([k]) => `<td>${r.indicators[k] ?? "—"}</td>`).join("") + "</tr>").join("");
    document.querySelectorAll("a[data-u]").forEach(a => a.onclick = () => { unit = a.dataset.u; refresh(); });
    document.getElementById("err").textContent = "";
  }catch(e){ document.getElementById("err").textContent = " " + e.message; }
}
document.getElementById("signin").onclick = () => {
  localStorage.setItem("jiandu.token", document.getElementById("token").value); unit = null; refresh(); };
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""
