// The plugin the process tests load, written here as the ES module a user would write (plain
// JavaScript, no imports from espresso): an exchange type, a publish interceptor that stamps and
// refuses, a deliver interceptor, an auth backend with authorization, and lifecycle listeners that
// append each event to a file the test reads.

export const testPluginSource = `
import { appendFileSync } from 'node:fs';

export default {
  name: 'test-plugin',
  version: '0.0.1',
  setup(api) {
    const record = (event) => (e) => appendFileSync(api.config.eventsFile, JSON.stringify({ event, ...e }) + '\\n');
    for (const event of ['node.up', 'node.down', 'queue.declared', 'queue.deleted', 'connection.opened', 'connection.closed', 'leader.changed']) {
      api.on(event, record(event));
    }
    // Routes by the first letter of the routing key to bindings whose key is that letter.
    api.exchangeType('x-first-letter', {
      route(message, bindings) {
        return bindings.filter((b) => b.routingKey === message.routingKey.slice(0, 1));
      },
      validateBinding(binding) {
        return binding.routingKey.length === 1 ? null : 'x-first-letter binding keys are one letter, got ' + JSON.stringify(binding.routingKey);
      },
    });
    // An exchange type whose routing fails: the publish fails, the node serves on.
    api.exchangeType('x-broken', {
      route(message) {
        if (message.routingKey === 'boom') throw new Error('cannot route boom');
        return [];
      },
    });
    api.onPublish((m) => {
      if (m.headers['forbidden'] !== undefined) return { refuse: { code: 406, text: 'forbidden header on ' + m.routingKey } };
      if (m.routingKey === 'plain') return undefined;
      return { headers: { ...m.headers, 'x-stamped': 'by ' + api.nodeId }, properties: { appId: 'test-plugin' } };
    });
    api.onDeliver((m) => ({ headers: { ...m.headers, 'x-delivered-from': m.queue } }));
    api.authBackend({
      authenticate(user, password, connection) {
        if (user !== 'plugin-user') return null;
        if (password !== 'secret') return { allow: false, reason: 'wrong password' };
        return { allow: true, tags: ['monitoring'] };
      },
      authorize(r) {
        appendFileSync(api.config.eventsFile, JSON.stringify({ event: 'authorize', ...r }) + '\\n');
        if (r.kind === 'vhost') return r.vhost === '/';
        if (r.kind === 'resource' && r.resource === 'queue' && r.name === 'forbidden-queue') return false;
        return true;
      },
    });
    api.log.info('test plugin set up', { node: api.nodeId });
  },
};
`;

export const brokenSetupSource = `
export default {
  name: 'broken-setup',
  version: '1.0.0',
  setup() { throw new Error('missing setting xyz'); },
};
`;

export const notAPluginSource = `export const something = 1;\n`;
