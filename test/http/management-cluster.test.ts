// The management API on a 3-node cluster of server processes, driven through HTTP and AMQP at
// once: a queue declared over AMQP on n1 shows on n3's API with its leader, replicas and commit
// index; a connection on n1 is listed by n3 and closed through n3's API (320 to the client); a user
// without permissions is refused; `ctl diff / apply / export` take definitions as desired state.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { amqpUrl, clusterAddress, clusterForFile, eventually, runCtl } from '../cli/cluster-nodes.js';

const secret = 'mgmt-secret';
const cluster = clusterForFile('espresso-mgmt-cluster-', secret);
const files = mkdtempSync(join(tmpdir(), 'espresso-mgmt-defs-'));
afterAll(() => rmSync(files, { recursive: true, force: true }));

async function api(node: string, method: string, path: string, body?: unknown, who: [string, string] = ['guest', 'guest'], headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const r = await fetch(`http://127.0.0.1:${cluster.nodes.get(node)!.httpPort()}${path}`, {
    method, headers: { authorization: `Basic ${Buffer.from(who.join(':')).toString('base64')}`, ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: text === '' ? null : JSON.parse(text) as unknown };
}

function ctl(node: string, ...args: string[]): ReturnType<typeof runCtl> {
  return runCtl(['--cluster-address', clusterAddress(cluster.nodes.get(node)!), '--cluster-secret', secret, ...args]);
}

describe('management API on a 3-node cluster', () => {
  it("shows a queue declared over AMQP on n1 on n3's API with its leader and replicas", async () => {
    const conn = await cluster.connect('n1');
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('orders', { durable: true });
    for (let i = 0; i < 5; i++) ch.sendToQueue('orders', Buffer.from(`o${i}`), { persistent: true });
    await ch.waitForConfirms();
    let row: Record<string, unknown> = {};
    await eventually('orders with a leader and 3 replicas on n3', async () => {
      row = (await api('n3', 'GET', '/api/queues/%2F/orders')).json as Record<string, unknown>;
      return row['leader'] !== null && (row['online'] as string[] | undefined)?.length === 3 && row['messages_ready'] === 5;
    }, 20_000);
    expect(row).toMatchObject({ name: 'orders', vhost: '/', durable: true, messages: 5, state: 'running' });
    expect([...(row['members'] as string[])].sort()).toEqual(['n1', 'n2', 'n3']);
    expect(['n1', 'n2', 'n3']).toContain(row['leader']);
    expect(row['commit_index']).toBeGreaterThan(0);
    expect(Object.keys(row['follower_lag'] as object).sort()).toEqual(['n1', 'n2', 'n3'].filter((n) => n !== row['leader']));
    const nodes = (await api('n2', 'GET', '/api/nodes')).json as Array<{ name: string; running: boolean }>;
    expect(nodes.map((n) => [n.name, n.running])).toEqual([['n1', true], ['n2', true], ['n3', true]]);
    expect((await api('n1', 'GET', '/api/health/checks/node-is-quorum-critical')).json).toEqual({ status: 'ok' });
    expect((await api('n2', 'GET', '/api/overview')).json).toMatchObject({ object_totals: { connections: 1, channels: 1 } });
  }, 60_000);

  it("closes a connection on n1 through n3's API with 320", async () => {
    const conn = await amqp.connect(amqpUrl(cluster.nodes.get('n1')!), { clientProperties: { connection_name: 'to-close' } });
    cluster.conns.push(conn);
    await conn.createChannel();
    const closed = new Promise<string>((resolve) => conn.on('close', (e?: Error) => resolve(e?.message ?? 'no error')));
    const listed = (await api('n3', 'GET', '/api/connections')).json as Array<{ name: string; node: string; channels: number; user_provided_name: string }>;
    const target = listed.find((c) => c.user_provided_name === 'to-close');
    expect(target).toMatchObject({ node: 'n1', channels: 1 });
    expect((await api('n3', 'DELETE', `/api/connections/${encodeURIComponent(target!.name)}`)).status).toBe(204);
    expect(await closed).toContain('320 (CONNECTION-FORCED) with message "CONNECTION_FORCED - Closed via management plugin"');
    await eventually('the closed connection gone from n2', async () => !((await api('n2', 'GET', '/api/connections')).json as Array<{ name: string }>).some((c) => c.name === target!.name), 10_000);
  }, 60_000);

  it('refuses a user without permissions or tags', async () => {
    expect((await api('n2', 'PUT', '/api/users/dave', { password: 'pw', tags: 'management' })).status).toBe(201);
    expect((await api('n1', 'PUT', '/api/users/erin', { password: 'pw', tags: '' })).status).toBe(201);
    await eventually('dave known on n3', async () => (await api('n3', 'GET', '/api/whoami', undefined, ['dave', 'pw'])).status === 200, 10_000);
    expect(await api('n3', 'GET', '/api/queues/%2F', undefined, ['dave', 'pw'])).toMatchObject({ status: 404, json: { error: 'not_found' } });
    expect(await api('n3', 'PUT', '/api/queues/%2F/x', { durable: true }, ['dave', 'pw'])).toMatchObject({ status: 404 });
    expect(await api('n3', 'DELETE', '/api/users/guest', undefined, ['dave', 'pw'])).toMatchObject({ status: 401, json: { error: 'not_authorised', reason: 'Not administrator user' } });
    await eventually('erin known on n2', async () => (await api('n2', 'GET', '/api/whoami', undefined, ['erin', 'pw'])).status === 401, 10_000);
    expect(await api('n2', 'GET', '/api/whoami', undefined, ['erin', 'pw'])).toMatchObject({ status: 401, json: { error: 'not_authorised', reason: 'Not management user' } });
  }, 60_000);

  it('diffs, applies and exports definitions as the desired state with ctl', async () => {
    const defs = {
      users: [
        { name: 'guest', password_hash: '9/1i+jKFRpbTRV1PtRnzFFYibT3cEpP92JeZ8YKGtflf4e/u', hashing_algorithm: 'rabbit_password_hashing_sha256', tags: ['administrator'] },
        { name: 'frank', password_hash: 'kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR', hashing_algorithm: 'rabbit_password_hashing_sha256', tags: 'monitoring' },
      ],
      vhosts: [{ name: '/' }, { name: 'ops' }],
      permissions: [{ user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' }, { user: 'frank', vhost: 'ops', configure: '.*', write: '.*', read: '.*' }],
      queues: [{ name: 'orders', vhost: '/', durable: true, auto_delete: false, arguments: {} }, { name: 'alerts', vhost: 'ops', durable: true, auto_delete: false, arguments: { 'x-queue-type': 'quorum' } }],
      exchanges: [], bindings: [], policies: [],
    };
    const file = join(files, 'defs.json');
    writeFileSync(file, JSON.stringify(defs));
    const diff = await ctl('n1', 'diff', file);
    expect(diff.code).toBe(1);
    // dave and erin (made by the previous test) are not in the file: desired state deletes them.
    expect(diff.stdout).toContain("+ create user 'frank' (tags: monitoring)");
    expect(diff.stdout).toContain("+ create queue 'alerts' in vhost 'ops'");
    expect(diff.stdout).toContain("- delete user 'dave'");
    // guest's hash in the file is another salt than the cluster's: a change (the same password or not, a hash is all the file says).
    expect(diff.stdout).toContain("~ change user 'guest' (password)");
    expect(diff.stdout).toContain('4 to create, 1 to change, 2 to delete');
    const dry = await ctl('n2', 'apply', file);
    expect([dry.code, dry.stdout.trimEnd().split('\n').pop()]).toEqual([0, 'run again with --yes to apply']);
    expect((await api('n2', 'GET', '/api/vhosts/ops')).status).toBe(404);

    const bad = join(files, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...defs, queues: [{ name: 'q', vhost: 'nowhere' }] }));
    const refused = await ctl('n3', 'apply', bad, '--yes');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain("! error: queue 'q' in vhost 'nowhere': no vhost 'nowhere'");
    expect((await api('n3', 'GET', '/api/vhosts/ops')).status).toBe(404);

    const applied = await ctl('n3', 'apply', file, '--yes');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/applied \d+ change\(s\)\n$/);
    await eventually('alerts listed on n1', async () => (await api('n1', 'GET', '/api/queues/ops/alerts')).status === 200, 10_000);
    expect((await api('n1', 'GET', '/api/whoami', undefined, ['frank', 'test12'])).json).toMatchObject({ name: 'frank', tags: ['monitoring'] });
    expect(await ctl('n2', 'diff', file)).toMatchObject({ code: 0, stdout: 'no changes: the cluster matches the file\n' });
    const exported = join(files, 'exported.json');
    expect((await ctl('n1', 'export', exported)).code).toBe(0);
    expect(await ctl('n2', 'diff', exported)).toMatchObject({ code: 0, stdout: 'no changes: the cluster matches the file\n' });
  }, 90_000);
});
