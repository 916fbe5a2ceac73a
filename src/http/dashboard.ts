// The web dashboard at / on the HTTP port: one page, no CDN, served by the node, reading the
// management API every 5 s with the browser's HTTP Basic credentials (the page itself asks for them,
// so the browser sends them on its API calls). Cluster (nodes, alarms), queues (depth, leader,
// replicas, lag), connections, exchanges and vhosts.

import { requireUser, type Authenticate } from './basic-auth.js';
import type { HttpListener } from './server.js';

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>espresso</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#3b2314;color:#fff;padding:10px 16px;display:flex;gap:16px;align-items:baseline}
header h1{font-size:18px;margin:0} header span{opacity:.8}
main{padding:12px 16px;display:grid;gap:16px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;overflow:auto}
h2{font-size:15px;margin:4px 0 8px}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;white-space:nowrap}
th{font-weight:600;color:#555} td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600} .ok{color:#1b7f3a} .muted{color:#888}
.bar{display:inline-block;height:8px;background:#c58b4a;vertical-align:middle}
</style></head>
<body>
<header><h1>espresso</h1><span id="summary">loading…</span><span id="updated" class="muted"></span></header>
<main>
<section><h2>Nodes</h2><table id="nodes"></table></section>
<section><h2>Queues</h2><table id="queues"></table></section>
<section><h2>Connections</h2><table id="connections"></table></section>
<section><h2>Exchanges</h2><table id="exchanges"></table></section>
<section><h2>Virtual hosts</h2><table id="vhosts"></table></section>
</main>
<script>
"use strict";
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
const num = (v) => '<td class="n">' + esc(v) + '</td>';
function table(id, head, rows) {
  const el = document.getElementById(id);
  el.innerHTML = '<tr>' + head.map((h) => '<th>' + esc(h) + '</th>').join('') + '</tr>' +
    (rows.length === 0 ? '<tr><td class="muted" colspan="' + head.length + '">none</td></tr>' : rows.map((r) => '<tr>' + r.join('') + '</tr>').join(''));
}
const td = (v, cls) => '<td' + (cls ? ' class="' + cls + '"' : '') + '>' + esc(v) + '</td>';
async function get(path) {
  // From the origin: a page opened as http://user:pass@host/ has a base URL fetch() refuses.
  const r = await fetch(location.origin + path, { credentials: 'same-origin' });
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return r.json();
}
async function refresh() {
  try {
    const [overview, nodes, queues, conns, exchanges, vhosts] = await Promise.all([
      get('/api/overview'), get('/api/nodes').catch(() => []), get('/api/queues'), get('/api/connections'), get('/api/exchanges'), get('/api/vhosts'),
    ]);
    const t = overview.object_totals;
    document.getElementById('summary').textContent = 'node ' + overview.node + ' · ' + t.queues + ' queues · ' + t.connections +
      ' connections · ' + t.consumers + ' consumers · ' + overview.queue_totals.messages + ' messages';
    table('nodes', ['node', 'running', 'memory MB', 'alarms', 'uptime s'], nodes.map((n) => [
      td(n.name), td(n.running ? 'yes' : 'no', n.running ? 'ok' : 'bad'), num(Math.round(n.mem_used / 1048576)),
      td([n.mem_alarm ? 'memory' : '', n.disk_free_alarm ? 'disk' : ''].filter(Boolean).join(', ') || 'none', n.mem_alarm || n.disk_free_alarm ? 'bad' : 'ok'),
      num(Math.round(n.uptime / 1000))]));
    const deepest = Math.max(1, ...queues.map((q) => q.messages));
    table('queues', ['vhost', 'name', 'type', 'state', 'ready', 'unacked', 'depth', 'consumers', 'leader', 'replicas', 'follower lag'], queues.map((q) => [
      td(q.vhost), td(q.name), td(q.type), td(q.state, q.state === 'running' ? 'ok' : 'bad'), num(q.messages_ready), num(q.messages_unacknowledged),
      '<td><span class="bar" style="width:' + Math.round(120 * q.messages / deepest) + 'px"></span></td>', num(q.consumers),
      td(q.leader ?? (q.replicas ? 'none' : q.node), q.replicas && !q.leader ? 'bad' : ''), td((q.members ?? []).join(', ')),
      td(q.follower_lag ? Object.entries(q.follower_lag).map(([n, l]) => n + ':' + l).join(' ') : '')]));
    table('connections', ['name', 'node', 'user', 'vhost', 'channels', 'state', 'client'], conns.map((c) => [
      td(c.name), td(c.node), td(c.user), td(c.vhost), num(c.channels), td(c.state), td(c.user_provided_name ?? (c.client_properties || {}).product)]));
    table('exchanges', ['vhost', 'name', 'type', 'durable'], exchanges.filter((x) => x.name !== '' && !x.name.startsWith('amq.')).map((x) => [
      td(x.vhost), td(x.name), td(x.type), td(x.durable ? 'yes' : 'no')]));
    table('vhosts', ['name'], vhosts.map((v) => [td(v.name)]));
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById('updated').textContent = 'update failed: ' + e.message;
  }
}
refresh();
setInterval(refresh, 5000);
</script>
</body></html>
`;

/** GET / (and /index.html): the dashboard page, for a user with a management tag (the browser asks for credentials). */
export function serveDashboard(http: HttpListener, authenticate: Authenticate): void {
  const handler = (req: Parameters<typeof requireUser>[1]): { status: number; headers: Record<string, string>; body: string } => {
    requireUser(authenticate, req);
    return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, body: page };
  };
  http.route('GET', '/', handler);
  http.route('GET', '/index.html', handler);
}
