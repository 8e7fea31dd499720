// flowguard web view: plain JavaScript, no dependencies, no build step.
'use strict';

const view = document.getElementById('view');

// h builds an element; strings become text nodes (never parsed as HTML).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the page's CSP, unlike a style attribute
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function showError(msg) {
  const e = document.getElementById('error');
  e.textContent = msg;
  e.hidden = !msg;
  if (msg) setTimeout(() => { if (e.textContent === msg) e.hidden = true; }, 8000);
}

// api fetches JSON from the daemon. State-changing requests carry the
// X-Requested-With header the server's cross-site check asks for.
async function api(path, method, body) {
  const headers = { 'Accept': 'application/json', 'X-Requested-With': 'flowguard-ui' };
  const init = { method: method || 'GET', headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  if (!r.ok) {
    const err = new Error(method === 'GET' || !method ? `${path}: ${r.status} ${text.trim()}` : text.trim() || `${r.status}`);
    err.status = r.status;
    throw err;
  }
  return text ? JSON.parse(text) : null;
}

// ---- formatting
const fmtNum = (v) => {
  if (v == null || v === '') return '';
  const n = Number(v);
  if (!isFinite(n)) return String(v);
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(2) + 'G';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + 'M';
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
};
const fmtBytes = (v) => {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let n = Number(v) || 0, i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : String(n)) + u[i];
};
const fmtTime = (s) => {
  if (!s || s.startsWith('0001-')) return '';
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString();
};
const groupText = (g) => Object.keys(g || {}).sort().map((k) => `${k}=${g[k]}`).join(' ');
const statusOf = (a) => a.status || 'firing';

// ---- alert store, fed by the list API and the event stream
const alerts = new Map(); // id -> alert
let onAlert = null; // the current page's hook for a changed alert
let onReconnect = null; // the current page's hook for a stream opened again (events may be lost)

function startEvents() {
  const live = document.getElementById('live');
  const es = new EventSource('/api/events');
  let opened = false;
  es.onopen = () => {
    live.textContent = 'live'; live.className = 'live on';
    if (opened && onReconnect) onReconnect();
    opened = true;
  };
  es.onerror = () => { live.textContent = 'reconnecting'; live.className = 'live off'; };
  es.addEventListener('alert', (ev) => {
    let a;
    try { a = JSON.parse(ev.data); } catch (e) { return; }
    alerts.set(a.id, a);
    if (onAlert) onAlert(a);
  });
}

// ---- pages
const pages = { alerts: alertsPage, alert: alertPage, silences: silencesPage, rules: rulesPage, exporters: exportersPage, top: topPage };
let cleanup = [];

function route() {
  for (const fn of cleanup) fn();
  cleanup = [];
  onAlert = null;
  onReconnect = null;
  const parts = (location.hash.replace(/^#\/?/, '') || 'alerts').split('/');
  const name = pages[parts[0]] ? parts[0] : 'alerts';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === name || (name === 'alert' && a.dataset.page === 'alerts'));
  view.replaceChildren();
  pages[name](decodeURIComponent(parts.slice(1).join('/'))).catch((e) => showError(e.message));
}

function every(ms, fn) {
  fn();
  const t = setInterval(fn, ms);
  cleanup.push(() => clearInterval(t));
}

// Alerts: live list with filters.
async function alertsPage() {
  const f = { state: '', severity: '', rule: '', addr: '' };
  const q = new URLSearchParams(location.search);
  for (const k of Object.keys(f)) f[k] = q.get(k) || '';
  const body = h('tbody', { id: 'alert-rows' });
  const count = h('span', { class: 'muted' });
  const input = (name, ph) => h('label', {}, name, h('input', { name, placeholder: ph, value: f[name],
    onchange: (e) => { f[name] = e.target.value.trim(); load(); } }));
  const select = (name, opts) => h('label', {}, name, h('select', { name, onchange: (e) => { f[name] = e.target.value; load(); } },
    opts.map((o) => h('option', { value: o, selected: o === f[name] }, o || 'any'))));
  view.append(h('h1', {}, 'Alerts ', count),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
      select('state', ['', 'firing', 'resolved']),
      select('severity', ['', 'critical', 'high', 'medium', 'low', 'info']),
      input('rule', 'rule id'), input('addr', 'IP address')),
    h('table', { id: 'alerts' }, h('thead', {}, h('tr', {},
      ['state', 'severity', 'rule', 'group', 'value', 'threshold', 'peak', 'fired', 'last seen', 'message'].map((c) => h('th', {}, c)))), body));

  const matches = (a) => (!f.state || statusOf(a) === f.state) && (!f.severity || a.severity === f.severity) &&
    (!f.rule || a.rule === f.rule) && (!f.addr || Object.values(a.group || {}).some((v) => String(v) === f.addr) ||
      (a.samples || []).some((s) => s.src_addr === f.addr || s.dst_addr === f.addr));
  const row = (a) => h('tr', { class: 'link', 'data-id': a.id, onclick: () => { location.hash = '#/alert/' + encodeURIComponent(a.id); } },
    h('td', {}, h('span', { class: 'state ' + statusOf(a) }, statusOf(a)), (a.silenced_by || []).length ? h('span', { class: 'muted silenced' }, ' silenced') : null),
    h('td', {}, h('span', { class: 'sev ' + a.severity }, a.severity)),
    h('td', {}, a.rule), h('td', {}, h('code', {}, groupText(a.group))),
    h('td', { class: 'num' }, fmtNum(a.value)), h('td', { class: 'num' }, fmtNum(a.threshold)),
    h('td', { class: 'num' }, fmtNum(a.peak ?? a.value)),
    h('td', {}, fmtTime(a.fired_at)), h('td', {}, fmtTime(a.ended_at || a.last_seen)), h('td', {}, a.message));
  let shown = [];
  const render = () => {
    shown.sort((a, b) => (b.fired_at || '').localeCompare(a.fired_at || ''));
    body.replaceChildren(...shown.map(row));
    count.textContent = `(${shown.length})`;
  };
  async function load() {
    const p = new URLSearchParams({ limit: '200' });
    for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
    const u = new URL(location.href);
    u.search = new URLSearchParams(Object.entries(f).filter(([, v]) => v)).toString();
    history.replaceState(null, '', u);
    try {
      const list = await api('/api/alerts?' + p);
      for (const a of list) {
        const old = alerts.get(a.id); // the stream may have brought a newer state meanwhile
        if (!old || (a.notifications ?? 0) >= (old.notifications ?? 0)) alerts.set(a.id, a);
      }
      shown = list.map((a) => alerts.get(a.id)).filter(matches);
      render();
    } catch (e) { showError(e.message); }
  }
  onReconnect = load;
  onAlert = (a) => {
    shown = shown.filter((x) => x.id !== a.id);
    if (matches(a)) shown.push(a);
    render();
  };
  await load();
}

// One alert: its value against the threshold over time, samples, enrichment.
async function alertPage(id) {
  let data;
  try {
    data = await api('/api/alerts/' + encodeURIComponent(id));
  } catch (e) {
    if (e.status !== 404 && e.status !== 405) throw e;
    // A daemon without the alert history: the alert as listed.
    const a = alerts.get(id) || (await api('/api/alerts?limit=400')).find((x) => x.id === id);
    if (!a) { view.append(h('h1', {}, 'Alert not found'), h('p', {}, id)); return; }
    data = { alert: a, series: [], threshold: a.threshold };
  }
  const canvas = h('canvas', { class: 'chart', id: 'chart' });
  const info = h('div');
  view.append(h('p', {}, h('a', { href: '#/alerts' }, '← Alerts')), info, h('h2', {}, 'Value against threshold'), canvas);
  const show = () => {
    const a = data.alert;
    const rows = [['state', h('span', { class: 'state ' + statusOf(a) }, statusOf(a))], ['severity', a.severity], ['rule', a.rule],
      ['group', h('code', {}, groupText(a.group))], ['value', fmtNum(a.value)], ['threshold', fmtNum(data.threshold ?? a.threshold)],
      ['peak', fmtNum(a.peak ?? a.value)], ['window', a.window], ['first seen', fmtTime(a.first_seen)], ['last seen', fmtTime(a.last_seen)],
      ['fired', fmtTime(a.fired_at)], ['ended', fmtTime(a.ended_at)], ['notifications', a.notifications ?? ''],
      ['silenced by', (a.silenced_by || []).join(', ')], ['tags', (a.tags || []).join(', ')], ['id', h('code', {}, a.id)]];
    const enr = Object.entries(a.enrichment || {}).filter(([, e]) => Object.values(e || {}).some((v) => v !== '' && v != null && v !== false && !(Array.isArray(v) && !v.length)));
    info.replaceChildren(h('h1', {}, a.name || a.rule), h('p', {}, a.message),
      h('table', { class: 'kv' }, h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))))),
      h('h2', {}, 'Enrichment'),
      enr.length ? h('table', {}, h('thead', {}, h('tr', {}, ['field', 'country', 'city', 'ASN', 'organisation', 'network', 'internal', 'lists'].map((c) => h('th', {}, c)))),
        h('tbody', {}, enr.map(([k, e]) => h('tr', {}, h('td', {}, k), h('td', {}, e.country || ''), h('td', {}, e.city || ''),
          h('td', {}, e.asn ? 'AS' + e.asn : ''), h('td', {}, e.as_org || e.org || ''), h('td', {}, e.network || ''),
          h('td', {}, e.internal ? 'yes' : ''), h('td', {}, (e.lists || []).join(', '))))))
        : h('p', { class: 'muted' }, 'none'),
      h('h2', {}, 'Samples'),
      h('table', { id: 'samples' }, h('thead', {}, h('tr', {}, ['time', 'source', 'destination', 'proto', 'bytes', 'packets', 'exporter'].map((c) => h('th', {}, c)))),
        h('tbody', {}, (a.samples || []).map((s) => h('tr', {}, h('td', {}, fmtTime(s.time_flow_end || s.time_flow_start || s.time_received)),
          h('td', {}, s.src_addr + (s.src_port ? ':' + s.src_port : '')), h('td', {}, s.dst_addr + (s.dst_port ? ':' + s.dst_port : '')),
          h('td', {}, s.proto_name || s.proto), h('td', { class: 'num' }, fmtNum(s.bytes)), h('td', { class: 'num' }, fmtNum(s.packets)),
          h('td', {}, s.exporter_addr || s.sampler_address || ''))))));
    let series = (data.series || []).map((p) => ({ t: Date.parse(p.t), v: Number(p.v) })).filter((p) => isFinite(p.t));
    if (!series.length) {
      series = [{ t: Date.parse(a.first_seen), v: 0 }, { t: Date.parse(a.fired_at || a.last_seen), v: Number(a.value) }];
      if (a.peak != null) series.push({ t: Date.parse(a.last_seen), v: Number(a.peak) });
      series = series.filter((p) => isFinite(p.t)).sort((x, y) => x.t - y.t);
    }
    drawChart(canvas, series, Number(data.threshold ?? a.threshold));
  };
  show();
  const redraw = () => show();
  window.addEventListener('resize', redraw);
  cleanup.push(() => window.removeEventListener('resize', redraw));
  onAlert = async (a) => {
    if (a.id !== id) return;
    try { data = await api('/api/alerts/' + encodeURIComponent(id)); } catch (e) { data = { ...data, alert: a }; }
    show();
  };
}

// drawChart draws the value (line) against the threshold (dashed) on a canvas.
function drawChart(canvas, series, threshold) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, ht = canvas.clientHeight || 260;
  canvas.width = w * dpr; canvas.height = ht * dpr;
  const c = canvas.getContext('2d');
  c.scale(dpr, dpr);
  c.fillStyle = '#fff'; c.fillRect(0, 0, w, ht);
  const pad = { l: 60, r: 16, t: 14, b: 28 };
  const ts = series.map((p) => p.t), vs = series.map((p) => p.v);
  let t0 = Math.min(...ts), t1 = Math.max(...ts);
  if (!isFinite(t0)) { t0 = Date.now() - 60000; t1 = Date.now(); }
  if (t1 <= t0) { t0 -= 30000; t1 += 30000; }
  const vmax = Math.max(isFinite(threshold) ? threshold * 1.15 : 0, ...vs.map((v) => v * 1.1), 1);
  const x = (t) => pad.l + (t - t0) / (t1 - t0) * (w - pad.l - pad.r);
  const y = (v) => ht - pad.b - v / vmax * (ht - pad.t - pad.b);
  c.strokeStyle = '#d9dbdd'; c.fillStyle = '#6b6f73'; c.font = '11px system-ui, sans-serif'; c.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = vmax * i / 4;
    c.beginPath(); c.moveTo(pad.l, y(v)); c.lineTo(w - pad.r, y(v)); c.stroke();
    c.fillText(fmtNum(v), 4, y(v) + 4);
  }
  c.fillText(new Date(t0).toLocaleTimeString(), pad.l, ht - 8);
  const end = new Date(t1).toLocaleTimeString();
  c.fillText(end, w - pad.r - c.measureText(end).width, ht - 8);
  if (isFinite(threshold)) {
    const ty = Math.round(y(threshold)); // on the pixel grid: a crisp line
    c.strokeStyle = '#b3261e'; c.setLineDash([6, 4]); c.lineWidth = 2;
    c.beginPath(); c.moveTo(pad.l, ty); c.lineTo(w - pad.r, ty); c.stroke();
    c.setLineDash([]); c.fillStyle = '#b3261e'; c.fillText('threshold ' + fmtNum(threshold), pad.l + 4, y(threshold) - 4);
  }
  c.strokeStyle = '#1f5fa8'; c.fillStyle = '#1f5fa8'; c.lineWidth = 2;
  c.beginPath();
  series.forEach((p, i) => (i ? c.lineTo(x(p.t), y(p.v)) : c.moveTo(x(p.t), y(p.v))));
  c.stroke();
  for (const p of series) { c.beginPath(); c.arc(x(p.t), y(p.v), series.length > 30 ? 2 : 4, 0, 2 * Math.PI); c.fill(); }
  const last = series[series.length - 1];
  if (last) c.fillText(fmtNum(last.v), Math.min(x(last.t) + 6, w - pad.r - 40), y(last.v) + 14);
}

// Silences: list, create, expire.
async function silencesPage() {
  const body = h('tbody', { id: 'silence-rows' });
  const matchers = h('textarea', { name: 'matchers', rows: 3, cols: 40, required: true, placeholder: 'rule=port-scan\ngroup.src_addr=10.0.0.5\nseverity=~high|critical' });
  const hours = h('input', { name: 'duration', value: '2h', size: 6, required: true });
  const author = h('input', { name: 'created_by', placeholder: 'your name', required: true });
  const comment = h('input', { name: 'comment', placeholder: 'why', size: 30, required: true });
  const form = h('form', { class: 'silence', id: 'silence-form', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const ms = parseMatchers(matchers.value);
      const dur = parseDuration(hours.value);
      const now = new Date();
      const res = await api('/api/silences', 'POST', { matchers: ms, starts_at: now.toISOString(),
        ends_at: new Date(now.getTime() + dur).toISOString(), created_by: author.value.trim(), comment: comment.value.trim() });
      showError('');
      matchers.value = '';
      await load();
      if (res && res.id) form.dataset.created = res.id;
    } catch (err) { showError('silence not created: ' + err.message); }
  } },
  h('label', {}, 'matchers (name=value, name!=value, name=~regex, name!~regex; one a line)', matchers),
  h('label', {}, 'for', hours), h('label', {}, 'created by', author), h('label', {}, 'comment', comment),
  h('button', { type: 'submit' }, 'Create silence'));
  view.append(h('h1', {}, 'Silences'), form,
    h('table', { id: 'silences' }, h('thead', {}, h('tr', {}, ['status', 'matchers', 'starts', 'ends', 'created by', 'comment', ''].map((c) => h('th', {}, c)))), body));
  const get = (s, snake, camel) => s[snake] ?? s[camel];
  async function load() {
    let list;
    try { list = await api('/api/silences'); } catch (e) { showError(e.message); return; }
    body.replaceChildren(...(list || []).map((s) => h('tr', { 'data-id': s.id },
      h('td', {}, s.status), h('td', {}, h('code', {}, (s.matchers || []).map(matcherText).join(', '))),
      h('td', {}, fmtTime(get(s, 'starts_at', 'startsAt'))), h('td', {}, fmtTime(get(s, 'ends_at', 'endsAt'))),
      h('td', {}, get(s, 'created_by', 'createdBy') || ''), h('td', {}, s.comment || ''),
      h('td', {}, s.status === 'expired' ? '' : h('button', { class: 'expire', onclick: async () => {
        try { await api('/api/silences/' + encodeURIComponent(s.id), 'DELETE'); await load(); } catch (e) { showError('not expired: ' + e.message); }
      } }, 'Expire')))));
  }
  every(10000, load);
}

function matcherText(m) {
  const re = m.is_regex ?? m.isRegex, eq = m.is_equal ?? m.isEqual ?? true;
  return m.name + (eq ? '=' : '!') + (re ? '~' : (eq ? '' : '=')) + m.value;
}

function parseMatchers(text) {
  const out = [];
  for (const line of text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Za-z_][\w.]*)\s*(=~|!~|!=|=)\s*(.*)$/.exec(line);
    if (!m) throw new Error(`"${line}": write name=value, name!=value, name=~regex or name!~regex`);
    const value = m[3].replace(/^"(.*)"$/, '$1');
    out.push({ name: m[1], value, is_regex: m[2].endsWith('~'), is_equal: !m[2].startsWith('!') });
  }
  if (!out.length) throw new Error('at least one matcher');
  return out;
}

function parseDuration(s) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$/.exec(s);
  if (!m) throw new Error('duration: a number and s, m, h or d, e.g. 2h');
  return Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]];
}

// bars draws rows as bars against a scale, with a mark at the threshold.
function bars(rows, scale, mark) {
  return h('div', { class: 'bars' }, rows.map((r) => {
    const pct = Math.min(100, scale > 0 ? r.value / scale * 100 : 0);
    return h('div', { class: 'bar' }, h('span', { title: r.label }, r.label),
      h('div', { class: 'track' }, h('div', { class: 'fill' + (mark != null && r.value >= mark ? ' over' : ''), style: { width: pct.toFixed(1) + '%' } }),
        mark != null && scale > 0 ? h('div', { class: 'mark', style: { left: Math.min(100, mark / scale * 100).toFixed(1) + '%' } }) : null),
      h('span', { class: 'num' }, r.text));
  }));
}

// Rules: counters, live top groups against the threshold, near misses.
async function rulesPage() {
  const box = h('div');
  view.append(h('h1', {}, 'Rules'), box);
  every(5000, async () => {
    let list;
    try { list = await api('/api/rules?limit=400'); } catch (e) { showError(e.message); return; }
    box.replaceChildren(h('table', { id: 'rules' }, h('thead', {}, h('tr', {}, ['rule', 'evaluations', 'matches', 'alerts', 'suppressed', 'errors', 'window keys', 'evicted', 'late', 'top groups'].map((c) => h('th', {}, c)))),
      h('tbody', {}, list.map((r) => {
        const th = Number(r.threshold);
        const groups = (r.top_groups || []).map((g) => ({ label: groupText(g.group), value: Number(g.value),
          text: fmtNum(g.value) + (isFinite(th) && th > 0 ? (g.value >= th ? ' over' : g.value >= th / 2 ? ' near miss' : '') : '') }));
        const scale = Math.max(isFinite(th) ? th * 1.2 : 0, ...groups.map((g) => g.value));
        return h('tr', {}, h('td', {}, r.id, r.last_error ? h('div', { class: 'muted' }, r.last_error) : null),
          ...[r.evaluations, r.matches, r.alerts, r.suppressed, r.errors, r.window_keys, r.window_evicted, r.window_late].map((v) => h('td', { class: 'num' }, fmtNum(v))),
          h('td', { class: 'groups' }, groups.length ? bars(groups, scale, isFinite(th) ? th : null) : h('span', { class: 'muted' }, 'none near the threshold')));
      }))));
  });
}

// Exporters: version, rate, loss, templates, sampling, clock skew.
async function exportersPage() {
  const box = h('div');
  view.append(h('h1', {}, 'Exporters'), box);
  every(5000, async () => {
    let list;
    try { list = await api('/api/exporters?limit=400'); } catch (e) { showError(e.message); return; }
    box.replaceChildren(list.length ? h('table', { id: 'exporters' }, h('thead', {}, h('tr', {}, ['exporter', 'listener', 'version', 'flows/s', 'flows', 'datagrams', 'decode errors', 'sequence lost', 'templates', 'sampling', 'clock skew', 'last seen'].map((c) => h('th', {}, c)))),
      h('tbody', {}, list.map((e) => h('tr', {}, h('td', {}, e.exporter + (e.exporters ? ` (${e.exporters})` : '')), h('td', {}, e.listener), h('td', {}, e.version),
        h('td', { class: 'num' }, fmtNum(e.flows_per_second)), h('td', { class: 'num' }, fmtNum(e.flows)), h('td', { class: 'num' }, fmtNum(e.datagrams)),
        h('td', { class: 'num' }, fmtNum(e.decode_errors)), h('td', { class: 'num' }, fmtNum(e.sequence_lost)), h('td', { class: 'num' }, e.templates),
        h('td', { class: 'num' }, e.sampling_rate ? '1:' + e.sampling_rate : ''), h('td', { class: 'num' }, (e.clock_skew_seconds || 0).toFixed(1) + ' s'),
        h('td', {}, fmtTime(e.last_seen)))))) : h('p', { class: 'muted' }, 'No exporter has sent flows yet.'));
  });
}

// Top talkers over 1, 5 or 15 minutes by bytes or packets.
async function topPage() {
  const s = { window: '5m', by: 'bytes' };
  const box = h('div', { class: 'grid4', id: 'top' });
  const sel = (name, opts) => h('label', {}, name, h('select', { name, onchange: (e) => { s[name] = e.target.value; load(); } },
    opts.map((o) => h('option', { value: o, selected: o === s[name] }, o))));
  const from = h('span', { class: 'muted' });
  view.append(h('h1', {}, 'Top talkers'), h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
    sel('window', ['1m', '5m', '15m']), sel('by', ['bytes', 'packets']), from), box);
  async function load() {
    let t;
    try { t = await api(`/api/top?window=${s.window}&by=${s.by}&n=10`); } catch (e) { showError(e.message); return; }
    from.textContent = 'since ' + fmtTime(t.from);
    const part = (title, rows) => {
      const v = (r) => s.by === 'bytes' ? r.bytes : r.packets;
      const max = Math.max(0, ...rows.map(v));
      return h('section', {}, h('h2', {}, title), rows.length ? bars(rows.map((r) => ({ label: r.key, value: v(r),
        text: `${fmtBytes(r.bytes)} ${fmtNum(r.packets)} pkts` })), max, null) : h('p', { class: 'muted' }, 'no flows'));
    };
    box.replaceChildren(part('Sources', t.sources), part('Destinations', t.destinations), part('Ports', t.ports), part('AS numbers', t.asns));
  }
  every(5000, load);
}

async function status() {
  try {
    const s = await api('/api/status');
    document.getElementById('status').textContent = `${s.version} · ${fmtNum(s.flows)} flows · ${s.rules} rules`;
  } catch (e) { /* shown by the pages */ }
}

window.addEventListener('hashchange', route);
startEvents();
route();
status();
setInterval(status, 15000);
