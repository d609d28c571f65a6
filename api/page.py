"""The built-in live page served at `/`: the dashboards' panels, drawn with plotly.js.

Offline sites: nothing comes from a CDN. plotly.min.js is served from the installed `plotly`
package (/static/plotly.min.js); the page's own script is inline.
"""

from api.page_script import PAGE_SCRIPT

PAGE_STYLE = """
*{box-sizing:border-box}
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",system-ui,sans-serif;margin:0;background:#f3f4f6;color:#1f2937}
header{background:#9f1d1d;color:#fff;padding:8px 18px;display:flex;gap:14px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0 12px 0 0;white-space:nowrap}
nav{display:flex;gap:4px;flex:1}
nav a{color:#fde8e8;padding:6px 12px;border-radius:4px;text-decoration:none;cursor:pointer}
nav a.on{background:#fff;color:#9f1d1d;font-weight:600}
header input{padding:4px 6px;border:0;border-radius:3px}
header button{background:#fff;color:#9f1d1d;border:0;border-radius:3px;padding:4px 10px;cursor:pointer}
#who{font-size:13px;opacity:.9}
#bar{display:flex;gap:14px;align-items:center;padding:8px 18px;background:#fff;border-bottom:1px solid #e5e7eb;flex-wrap:wrap;font-size:14px}
#crumbs a{color:#9f1d1d;cursor:pointer} #crumbs b{font-size:16px}
#bar input{font:inherit;padding:2px 4px} #status{color:#6b7280;font-size:12px;margin-left:auto}
#status.err{color:#b91c1c}
#verified{font-size:12px} #verified.ok{color:#047857} #verified.err{color:#b91c1c;font-weight:600}
main{display:grid;grid-template-columns:repeat(24,1fr);gap:12px;padding:14px 18px}
.panel{background:#fff;border-radius:6px;box-shadow:0 1px 2px #0002;display:flex;flex-direction:column;overflow:hidden}
.panel h2{font-size:14px;margin:0;padding:8px 12px 4px;font-weight:600}
.panel h2 small{font-weight:400;color:#6b7280;margin-left:6px}
.body{flex:1;min-height:0;overflow:auto;padding:0 8px 8px}
.empty{color:#9ca3af;padding:20px;text-align:center}
.cards{display:flex;gap:10px;flex-wrap:wrap;padding:4px}
.card{flex:1;min-width:110px;border-left:3px solid #9f1d1d;padding:4px 10px}
.card b{display:block;font-size:26px;color:#111827} .card span{color:#6b7280;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{position:sticky;top:0;background:#f9fafb;text-align:right;padding:5px 8px;border-bottom:1px solid #e5e7eb;white-space:nowrap}
td{border-bottom:1px solid #f3f4f6;padding:4px 8px;text-align:right;white-space:nowrap}
td:first-child,th:first-child{text-align:left} td.txt{text-align:left;white-space:normal}
td a{color:#9f1d1d;cursor:pointer;text-decoration:none} td a:hover{text-decoration:underline}
#welcome{padding:60px;text-align:center;color:#4b5563;font-size:16px}
#upload{position:fixed;inset:0;background:#0006;display:flex;align-items:flex-start;justify-content:center;z-index:10}
#upload[hidden]{display:none}
#upload .box{background:#fff;border-radius:6px;margin-top:70px;padding:16px 20px;width:min(760px,94vw);max-height:80vh;overflow:auto}
#upload h2{font-size:16px;margin:0 0 10px} #upload p{font-size:13px;color:#4b5563;margin:6px 0}
#upload .row{display:flex;gap:10px;align-items:center;margin:10px 0;flex-wrap:wrap}
#upload button{background:#9f1d1d;color:#fff;border:0;border-radius:3px;padding:5px 12px;cursor:pointer}
#upload button.plain{background:#e5e7eb;color:#1f2937} #upload button:disabled{opacity:.5}
#upload-result .ok{color:#047857;font-weight:600} #upload-result .err{color:#b91c1c;font-weight:600}
#upload-result td{text-align:left;white-space:normal}
@media (max-width:900px){.panel{grid-column:span 24 !important}}
"""

PAGE_HTML = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>监督 · 纪检监察报送统计</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>{PAGE_STYLE}</style>
<script src="/static/plotly.min.js"></script>
</head><body>
<header>
  <h1>监督 · 纪检监察报送统计</h1>
  <nav id="tabs"></nav>
  <form id="signin"><input id="token" type="password" placeholder="访问令牌" size="28"
    autocomplete="off"> <button type="submit">登录</button></form>
  <span id="who"></span><button id="upload-open" hidden>报送文件</button><button id="signout" hidden>退出</button>
</header>
<section id="bar" hidden>
  <span id="crumbs"></span>
  <label>起 <input type="date" id="from"></label>
  <label>止 <input type="date" id="to"></label>
  <label title="只计此时刻前入账的记录">截至 <input type="datetime-local" id="asof" step="1"></label>
  <button id="clear" type="button">全部时段</button>
  <button id="verify" type="button" hidden title="重算本单位及下级各单位的哈希链">核验账本</button>
  <span id="verified"></span>
  <span id="status"></span>
</section>
<main id="grid"></main>
<div id="welcome">请在右上角输入访问令牌并登录。</div>
<section id="upload" hidden><div class="box">
  <h2>报送文件 <small>Excel / CSV / JSON Lines</small></h2>
  <p>先下载填报模板，每行填写一个事件（事件编号已预先填好，请勿修改），再选择文件提交。
     文件中任何一行有误时整份文件都不报送，并列出有误的行；改正后再次提交同一文件是安全的，已接收的事件不会重复计数。</p>
  <div class="row"><button id="upload-template" class="plain" type="button">下载填报模板</button></div>
  <div class="row"><input id="upload-file" type="file" accept=".xlsx,.csv,.jsonl,.json">
    <button id="upload-send" type="button">提交</button>
    <button id="upload-close" class="plain" type="button">关闭</button></div>
  <div id="upload-result"></div>
</div></section>
<script>{PAGE_SCRIPT}</script>
</body></html>
"""
