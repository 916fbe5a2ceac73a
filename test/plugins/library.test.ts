// The package as a library: `import { startNode } from 'espresso'` (package.json "exports", the
// built dist/ that npm test builds first) starts a node inside the calling process with plugins
// given as shipped names or objects, answers AMQP on the port it returns, and stop() ends it; a
// plugin written in TypeScript type-checks against the declarations the package ships.

import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { startNode } from '../../src/cli/library.js';
import type { EspressoPlugin } from '../../src/cli/library.js';
import { consumerProject } from '../cli/consumer-project.js';

const project = consumerProject('espresso-library-');
afterAll(() => project.remove());

describe('startNode', () => {
  it('runs a node in this process with a plugin object and a shipped plugin, until stop()', async () => {
    const seen: string[] = [];
    const tagger: EspressoPlugin = {
      name: 'tagger', version: '1.0.0',
      setup(api) {
        api.onPublish((m) => ({ headers: { ...m.headers, tagged: true } }));
        api.on('connection.opened', (e) => { seen.push(e.user); });
      },
    };
    const node = await startNode({ plugins: [tagger, 'consistent-hash'] });
    try {
      const c = await amqp.connect(node.amqpUrl);
      const ch = await c.createConfirmChannel();
      await ch.assertExchange('ring', 'x-consistent-hash');
      await ch.assertQueue('ring-q', { durable: true });
      await ch.bindQueue('ring-q', 'ring', '1');
      ch.publish('ring', 'any', Buffer.from('hello'));
      await ch.waitForConfirms();
      const m = await ch.get('ring-q', { noAck: true });
      expect(m !== false && m.properties.headers).toMatchObject({ tagged: true });
      await c.close();
      expect(seen).toEqual(['guest']);
      expect(node.pluginCounters().routeFailures).toBe(0);
    } finally {
      await node.stop();
    }
    await expect(amqp.connect(node.amqpUrl)).rejects.toThrow();
  });

  it('refuses to start when a plugin throws in setup, naming it', async () => {
    const broken: EspressoPlugin = { name: 'fragile', version: '0.1.0', setup() { throw new Error('no config'); } };
    await expect(startNode({ plugins: [broken] })).rejects.toThrow("plugin 'fragile' ((in-process)) failed in setup: no config");
  });
});

describe('the package exports startNode and the plugin API', () => {
  it('resolves `espresso` to a startNode that starts and stops a node', async () => {
    const stdout = await project.runScript('embed.mjs', [
      "import { startNode, connectRpc } from 'espresso';",
      "const node = await startNode({ plugins: ['delayed-message'] });",
      "console.log(typeof connectRpc, node.amqpPort > 0, node.clusterPort > 0);",
      'await node.stop();',
    ]);
    expect(stdout.trim()).toBe('function true true');
  });

  it('type-checks a plugin against the shipped declarations', async () => {
    const out = await project.typeCheck('plugin.ts', [
      "import type { EspressoPlugin } from 'espresso';",
      'const plugin: EspressoPlugin = {',
      "  name: 'typed', version: '1.0.0',",
      '  setup(api) {',
      "    api.exchangeType('x-all', { route: (_m, bindings) => bindings });",
      "    api.onPublish((m) => (m.routingKey === 'no' ? { refuse: { code: 406, text: 'no' } } : undefined));",
      "    api.on('node.down', (e) => api.log.warn('down', { node: e.node }));",
      '  },',
      '};',
      'export default plugin;',
      "// @ts-expect-error: lifecycle events are a fixed list",
      "export const bad = (api: Parameters<EspressoPlugin['setup']>[0]) => api.on('node.exploded', () => undefined);",
    ]);
    expect(out).toBe('');
  });
});
