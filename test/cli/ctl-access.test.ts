// `espresso ctl` users, vhosts and permissions against a 3-node cluster of server processes: a user
// added through one node logs in on another only once it has permissions, its password and tags
// change, bad requests are refused naming the problem; a vhost deleted through one node takes its
// replicated queue off every node and closes its connections on the others with 320.

import { AMQPClient } from '@cloudamqp/amqp-client';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { clusterAddress, clusterForFile, eventually, listQueuesOf, runCtl } from './cluster-nodes.js';

const secret = 'access-secret';
const cluster = clusterForFile('espresso-ctl-access-', secret);

function ctl(node: string, ...args: string[]): ReturnType<typeof runCtl> {
  return runCtl(['--cluster-address', clusterAddress(cluster.nodes.get(node)!), '--cluster-secret', secret, ...args]);
}

function url(node: string, user: string, pass: string, vhost = '/'): string {
  return `amqp://${user}:${pass}@127.0.0.1:${cluster.nodes.get(node)!.spec.amqpPort}/${encodeURIComponent(vhost)}`;
}

/** The refusal text of a connect that must fail (amqp-client reports the server's close text). */
async function refusal(u: string): Promise<string> {
  const client = new AMQPClient(u);
  try {
    await client.connect();
    await client.close();
  } catch (e) {
    return String((e as Error).message);
  }
  return 'connected';
}

describe('espresso ctl users, vhosts and permissions', () => {
  it('adds a user on one node that logs in on another once permitted; changes its password and tags', async () => {
    const added = await ctl('n1', 'add-user', 'bob', 's3cret', '--tags', 'monitoring');
    expect([added.code, added.stdout, added.stderr]).toEqual([0, "user 'bob' added\n", '']);
    // No permissions in '/' yet: connection.open is refused as RabbitMQ does (530).
    expect(await refusal(url('n3', 'bob', 's3cret'))).toContain("access to vhost '/' refused for user 'bob'");
    expect((await ctl('n2', 'set-permissions', 'bob', '^bob-.*', '.*', '.*')).code).toBe(0);
    const c = await amqp.connect(url('n3', 'bob', 's3cret'));
    const ch = await c.createChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue('bob-q', { durable: true });
    // configure permission only on bob-*: another name is refused on the channel (403).
    const denied = await ch.assertQueue('other', { durable: true }).then(() => 'declared', (e: Error) => e.message);
    expect(denied).toContain("403 (ACCESS-REFUSED) with message \"ACCESS_REFUSED - configure access to queue 'other' in vhost '/' refused for user 'bob'");
    await c.close().catch(() => undefined);

    const [users, perms] = await Promise.all([ctl('n3', 'list-users'), ctl('n1', 'list-permissions')]);
    expect(users.stdout).toMatch(/^USER\s+TAGS\nbob\s+monitoring\nguest\s+administrator\n$/);
    expect(perms.stdout).toMatch(/\/\s+bob\s+\^bob-\.\*\s+\.\*\s+\.\*\n/);

    expect((await ctl('n2', 'change-password', 'bob', 'n3w')).code).toBe(0);
    // Every node applies the change a moment after the node asked commits it.
    await eventually('the old password refused on n1', async () => (await refusal(url('n1', 'bob', 's3cret'))).includes('ACCESS_REFUSED'), 10_000);
    const again = await amqp.connect(url('n1', 'bob', 'n3w'));
    await again.close();
    expect((await ctl('n1', 'set-user-tags', 'bob', 'administrator', 'policymaker')).code).toBe(0);
    expect((await ctl('n2', '--json', 'list-users')).stdout).toContain('"administrator",\n      "policymaker"');

    const [dup, missing, noVhost, usage] = await Promise.all([
      ctl('n1', 'add-user', 'bob', 'x'),
      ctl('n2', 'delete-user', 'nobody'),
      ctl('n3', 'set-permissions', 'bob', '.*', '.*', '.*', '--vhost', 'nope'),
      ctl('n1', 'set-permissions', 'bob', '.*'),
    ]);
    expect([dup.code, dup.stderr]).toEqual([1, "espresso ctl: refused: user 'bob' already exists\n"]);
    expect([missing.code, missing.stderr]).toEqual([1, "espresso ctl: refused: user 'nobody' does not exist\n"]);
    expect([noVhost.code, noVhost.stderr]).toEqual([1, "espresso ctl: refused: vhost 'nope' does not exist\n"]);
    expect(usage.code).toBe(64);
    expect(usage.stderr).toContain('needs USER CONF WRITE READ');

    expect((await ctl('n3', 'delete-user', 'bob')).code).toBe(0);
    await eventually('bob refused on n2', async () => (await refusal(url('n2', 'bob', 'n3w'))).includes('ACCESS_REFUSED'), 10_000);
    expect((await ctl('n1', 'list-permissions')).stdout).not.toContain('bob');
  }, 90_000);

  it('deletes a vhost with its queues on every node and closes its connections with 320', async () => {
    expect((await ctl('n1', 'add-vhost', 'shop')).stdout).toBe("vhost 'shop' added\n");
    expect((await ctl('n1', 'set-permissions', 'guest', '.*', '.*', '.*', '--vhost', 'shop')).code).toBe(0);
    expect((await ctl('n2', 'list-vhosts')).stdout).toMatch(/^NAME\n\/\nshop\n$/);

    const c1 = await amqp.connect(url('n1', 'guest', 'guest', 'shop'));
    const ch1 = await c1.createConfirmChannel();
    await ch1.assertQueue('orders', { durable: true });
    ch1.sendToQueue('orders', Buffer.from('o1'), { persistent: true });
    await ch1.waitForConfirms();
    await eventually('orders replicated on 3 nodes', async () => (await listQueuesOf(cluster.nodes.get('n3')!))
      .some((q) => q.vhost === 'shop' && q.name === 'orders' && q.reportedBy.length === 3), 20_000);
    const c3 = await amqp.connect(url('n3', 'guest', 'guest', 'shop'));
    // amqplib emits no 'error' for 320: the close event carries it.
    const closed = new Promise<string>((resolve) => c3.on('close', (e?: Error) => resolve(e?.message ?? 'closed without an error')));
    c1.on('error', () => undefined);

    const deleted = await ctl('n2', 'delete-vhost', 'shop');
    expect([deleted.code, deleted.stdout]).toEqual([0, "vhost 'shop' deleted\n"]);
    expect(await closed).toContain("CONNECTION_FORCED - vhost 'shop' is deleted");
    await eventually('no replica of shop/orders left', async () => {
      const rows = await Promise.all([...cluster.nodes.values()].map((n) => listQueuesOf(n)));
      return rows.every((list) => !list.some((q) => q.vhost === 'shop'));
    }, 20_000);
    expect((await ctl('n3', 'list-vhosts')).stdout).toBe('NAME\n/\n');
    expect(await refusal(url('n1', 'guest', 'guest', 'shop'))).toContain("access to vhost 'shop' refused");
    const gone = await ctl('n1', 'delete-vhost', 'shop');
    expect([gone.code, gone.stderr]).toEqual([1, "espresso ctl: refused: vhost 'shop' does not exist\n"]);
  }, 90_000);
});
