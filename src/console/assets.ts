/**
 * The console's only stylesheet and script, served from the program itself
 * (no CDN, no web font: clusters are often air-gapped). The script only
 * enhances pages that work without it: copy buttons, live key status by
 * polling a small JSON endpoint, and the typed delete confirmation.
 */
export const STYLE = `
:root{--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--accent:#0b5cad;--accent-fg:#fff;
--ok:#116329;--ok-bg:#dafbe1;--bad:#a40e26;--bad-bg:#ffebe9;--warn:#7d4e00;--warn-bg:#fff8c5;--focus:#0b5cad;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}
body{margin:0;line-height:1.5}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:var(--card);padding:.5rem;z-index:9}
header.top{background:#24292f;color:#fff}
header.top .bar{max-width:72rem;margin:0 auto;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center}
header.top a{color:#fff;text-decoration:none}
header.top .brand{font-weight:700;font-size:1.05rem}
header.top nav ul{list-style:none;margin:0;padding:0;display:flex;gap:1rem}
header.top nav a[aria-current]{text-decoration:underline;text-underline-offset:4px}
header.top .who{margin-left:auto;display:flex;gap:.75rem;align-items:center;font-size:.9rem}
header.top .who button{background:transparent;color:#fff;border-color:#8c959f}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.2rem;margin:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem;margin:0 0 1rem}
.card-head{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.5rem;margin-bottom:.75rem}
.muted{color:var(--muted)}
.notice{border-radius:6px;padding:.75rem 1rem;margin:0 0 1rem;border:1px solid}
.notice.error{background:var(--bad-bg);color:var(--bad);border-color:#ffcecb}
.notice.info{background:#ddf4ff;border-color:#b6e3ff}
.notice.warn{background:var(--warn-bg);color:var(--warn);border-color:#eac54f}
.table-wrap{overflow-x:auto;position:relative}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);white-space:nowrap}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f3f4f6;border:1px solid var(--line);border-radius:6px;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.badge{display:inline-block;border-radius:999px;padding:0 .55rem;font-size:.85rem;font-weight:600;white-space:nowrap}
.badge.ok{background:var(--ok-bg);color:var(--ok)}.badge.bad{background:var(--bad-bg);color:var(--bad)}.badge.unknown{background:#eaeef2;color:var(--muted)}.badge.warn{background:var(--warn-bg);color:var(--warn)}
button,.button{font:inherit;display:inline-block;border:1px solid var(--line);background:var(--card);color:var(--fg);border-radius:6px;padding:.35rem .8rem;cursor:pointer;text-decoration:none}
button.primary{background:var(--accent);border-color:var(--accent);color:var(--accent-fg)}
button.danger{background:var(--bad);border-color:var(--bad);color:#fff}
button:disabled{opacity:.55;cursor:not-allowed}
form.inline{display:inline}
details.menu{position:relative;display:inline-block}
details.menu summary{list-style:none;cursor:pointer;border:1px solid var(--line);border-radius:6px;padding:.2rem .7rem;background:var(--card)}
details.menu summary::-webkit-details-marker{display:none}
details.menu .menu-body{position:absolute;right:0;z-index:5;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.5rem;display:flex;flex-direction:column;gap:.4rem;min-width:11rem;box-shadow:0 4px 12px rgba(0,0,0,.12)}
details.menu .menu-body button{width:100%;text-align:left}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
fieldset{border:0;padding:0;margin:.75rem 0 0}legend{font-weight:600;padding:0}
fieldset label{display:inline-flex;gap:.35rem;font-weight:400;margin:.25rem 1rem 0 0}
input[type=text],input[type=search],select,textarea{font:inherit;width:100%;max-width:36rem;padding:.4rem .5rem;border:1px solid #8c959f;border-radius:6px;background:#fff;color:var(--fg)}
textarea{min-height:4rem}
.hint{font-size:.85rem;color:var(--muted);margin:.2rem 0 0}
.field-error{color:var(--bad);font-size:.9rem;margin:.2rem 0 0;font-weight:600}
[aria-invalid=true]{border-color:var(--bad)!important}
.actions{margin-top:1rem;display:flex;gap:.5rem;flex-wrap:wrap}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0}
dl.facts dt{font-weight:600;color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
.secret-row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
.secret-row code{background:#f3f4f6;border:1px solid var(--line);border-radius:6px;padding:.3rem .5rem;word-break:break-all}
.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
.filters label{margin:0 0 .25rem}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
footer{max-width:72rem;margin:0 auto;padding:1rem;color:var(--muted);font-size:.85rem}
@media (max-width:40rem){th,td{padding:.4rem .3rem}header.top .who{margin-left:0}dl.facts{grid-template-columns:1fr}}
`;

export const SCRIPT = `
'use strict';
(function () {
  var status = document.getElementById('live-status');
  function say(text) { if (status) status.textContent = text; }

  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener('click', function (e) {
    var b = e.target.closest && e.target.closest('button[data-copy]');
    if (!b) return;
    var el = document.getElementById(b.getAttribute('data-copy'));
    if (!el || !navigator.clipboard) { say('Copying is not available here; select the text instead.'); return; }
    navigator.clipboard.writeText(el.textContent.trim()).then(function () { say('Copied.'); }, function () { say('Could not copy.'); });
  });

  // Sign-out at the identity provider: a form the page submits at once (its button does without script).
  var away = document.querySelector('form[data-auto-submit]');
  if (away) away.submit();

  // Delete: the button is enabled once the key's name is typed (the server checks it again).
  var confirm = document.querySelector('input[data-confirm]');
  if (confirm) {
    var button = confirm.form.querySelector('button[type=submit]');
    var check = function () { button.disabled = confirm.value.trim() !== confirm.getAttribute('data-confirm'); };
    confirm.addEventListener('input', check);
    check();
  }

  // Live updates: the keys table polls its JSON endpoint and rewrites Ready and Last used.
  var live = document.querySelector('[data-live]');
  if (live) {
    var url = live.getAttribute('data-live');
    var every = Number(live.getAttribute('data-interval')) || 5000;
    var poll = function () {
      fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (body) {
        if (!body) return;
        var rows = live.querySelectorAll('tr[data-key]');
        var known = {};
        rows.forEach(function (row) { known[row.getAttribute('data-key')] = row; });
        var changed = body.keys.length !== rows.length;
        body.keys.forEach(function (k) {
          var row = known[k.name];
          if (!row) { changed = true; return; }
          Object.keys(k.cells).forEach(function (field) {
            var cell = row.querySelector('[data-field="' + field + '"]');
            if (cell && cell.innerHTML !== k.cells[field]) cell.innerHTML = k.cells[field];
          });
        });
        // A key came or went: reload, unless an Edit menu is open.
        if (changed && !live.querySelector('details[open]')) location.reload();
      }).catch(function () { /* the next poll tries again */ });
    };
    setInterval(poll, every);
  }
})();
`;
