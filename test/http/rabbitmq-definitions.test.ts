// Definitions exported by a real RabbitMQ 3.10 node (Debian's rabbitmq-server, installed by
// bench/rabbitmq.ts when missing, on free loopback ports) imported into espresso through
// POST /api/definitions: its users log in with the passwords RabbitMQ hashed, its queues, exchange,
// binding and policy are there, and a second plan of the same file is empty.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRabbitInstalled, rabbitCtl, startRabbit } from '../../bench/rabbitmq.js';
import type { BrokerHandle } from '../../bench/broker-process.js';
import { freePorts } from '../../cluster/ports.js';
import { nodeId } from '../../src/lib/ids.js';
import { planDefinitions, type Definitions } from '../../src/model/index.js';
import { startManagedNode, type ManagedNode } from './management-node.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const missing = await ensureRabbitInstalled(log).then(() => null, (e: unknown) => String(e));
if (missing !== null) log(`skipping the RabbitMQ definitions test: RabbitMQ cannot be installed here (${missing})`);

describe.skipIf(missing !== null)('definitions exported by RabbitMQ 3.10', () => {
  const work = mkdtempSync(join(tmpdir(), 'espresso-rabbit-defs-'));
  let rabbit: BrokerHandle | undefined;
  let espresso: ManagedNode;
  let defs: Definitions;

  beforeAll(async () => {
    const [amqpPort, distPort] = await freePorts(2);
    const name = `espdefs${amqpPort!}`;
    rabbit = await startRabbit('single', work, log, { amqp: amqpPort!, dist: distPort!, name });
    for (const args of [
      ['add_user', 'carol', 'carols-secret'], ['set_user_tags', 'carol', 'monitoring'], ['add_vhost', 'billing'],
      ['set_permissions', '-p', 'billing', 'carol', '.*', '.*', '.*'],
      ['set_policy', '-p', 'billing', '--priority', '1', '--apply-to', 'queues', 'cap', '^inv', '{"max-length":10}'],
    ]) await rabbitCtl(work, args, name);
    const conn = await amqp.connect(`amqp://carol:carols-secret@127.0.0.1:${amqpPort!}/billing`);
    const ch = await conn.createChannel();
    await ch.assertQueue('invoices', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.assertQueue('archive', { durable: true });
    await ch.assertExchange('billing.events', 'topic', { durable: true });
    await ch.bindQueue('invoices', 'billing.events', 'invoice.#');
    await conn.close();
    const file = join(work, 'rabbit-definitions.json');
    await rabbitCtl(work, ['export_definitions', file], name);
    defs = JSON.parse(readFileSync(file, 'utf8')) as Definitions;
    espresso = await startManagedNode();
  }, 300_000);
  afterAll(async () => {
    await espresso?.stop();
    await rabbit?.stop();
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('imports them: the users log in with their RabbitMQ passwords, and a second plan is empty', async () => {
    expect(defs['rabbit_version']).toMatch(/^3\.10\./);
    expect((await espresso.api('POST', '/api/definitions', defs)).status).toBe(204);
    const carol = await amqp.connect(`amqp://carol:carols-secret@127.0.0.1:${espresso.node.broker.port}/billing`);
    const ch = await carol.createConfirmChannel();
    ch.publish('billing.events', 'invoice.new', Buffer.from('i1'), { persistent: true });
    await ch.waitForConfirms();
    expect((await ch.checkQueue('invoices')).messageCount).toBe(1);
    expect((await ch.checkQueue('archive')).messageCount).toBe(0);
    await carol.close();
    expect((await espresso.api('GET', '/api/policies/billing/cap')).json).toMatchObject({ pattern: '^inv', 'apply-to': 'queues', definition: { 'max-length': 10 }, priority: 1 });
    expect((await espresso.api('GET', '/api/whoami', undefined, ['carol', 'carols-secret'])).json).toMatchObject({ name: 'carol', tags: ['monitoring'] });

    const connection = { connectionId: 't', nodeId: nodeId('n1') };
    const state = espresso.node.broker.context.metadata.state;
    for (const mode of ['merge', 'exact'] as const) {
      const plan = planDefinitions(state, defs, { mode, connection });
      expect([mode, plan.steps.map((s) => `${s.action} ${s.what}`), plan.errors]).toEqual([mode, [], []]);
    }
  }, 60_000);
});
