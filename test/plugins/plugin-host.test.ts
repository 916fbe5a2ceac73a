// The plugin host without a broker: setup checks and errors, interceptors' changes (headers the
// plugin left alone keep their wire types, new ones get RabbitMQ's), refusals and failures, and
// lifecycle listeners that throw, all counted and none stopping the others.

import { describe, expect, it } from 'vitest';
import { PluginHost, type PublishVerdict } from '../../src/broker/plugin-host.js';
import type { EspressoPlugin, PluginApi } from '../../src/broker/plugin-api.js';
import type { StoredMessage } from '../../src/broker/queue-backend.js';
import { silentLogger } from '../../src/lib/log.js';

function plugin(name: string, setup: (api: PluginApi) => void): EspressoPlugin {
  return { name, version: '1.0.0', setup };
}

async function hostWith(...plugins: EspressoPlugin[]): Promise<PluginHost> {
  const host = new PluginHost(silentLogger, 'n1');
  await host.load(plugins.map((p) => ({ plugin: p, source: 'test', config: { answer: 42 } })));
  return host;
}

const message: StoredMessage = {
  exchange: 'x', routingKey: 'rk', body: Buffer.from('body'), rawProperties: Buffer.from([0, 0]),
  properties: { contentType: 'text/plain', headers: { small: { tag: 'I', value: 5 }, text: { tag: 'S', value: Buffer.from('hi') } } },
};

function changed(v: PublishVerdict): StoredMessage {
  if ('refuse' in v) throw new Error('refused');
  return v;
}

describe('plugin host', () => {
  it('refuses a plugin without setup, a plugin loaded twice, and names one whose setup throws', async () => {
    await expect(hostWith({ name: 'x' } as unknown as EspressoPlugin)).rejects.toThrow("plugin 'test' is not a plugin");
    await expect(hostWith(plugin('a', () => undefined), plugin('a', () => undefined))).rejects.toThrow("plugin 'a' is loaded twice");
    await expect(hostWith(plugin('bad', () => { throw new Error('boom'); }))).rejects.toThrow("plugin 'bad' (test) failed in setup: boom");
  });

  it('hands each plugin its config and node id', async () => {
    let seen: unknown;
    await hostWith(plugin('cfg', (api) => { seen = [api.config['answer'], api.nodeId]; }));
    expect(seen).toEqual([42, 'n1']);
  });

  it('keeps the wire type of headers a publish interceptor left alone and types new ones', async () => {
    const host = await hostWith(plugin('stamp', (api) => api.onPublish((m) => ({
      headers: { ...m.headers, ratio: 0.5, count: 3, list: ['a', 1], nested: { ok: true } },
      properties: { appId: 'stamp' },
    }))));
    const out = changed(host.interceptPublish(message));
    expect(out.rawProperties).toBeUndefined();
    expect(out.properties['appId']).toBe('stamp');
    expect(out.properties['contentType']).toBe('text/plain');
    expect(out.properties.headers).toEqual({
      small: { tag: 'I', value: 5 }, text: { tag: 'S', value: Buffer.from('hi') },
      ratio: { tag: 'd', value: 0.5 }, count: { tag: 'l', value: 3 },
      list: { tag: 'A', value: [{ tag: 'S', value: Buffer.from('a') }, { tag: 'l', value: 1 }] },
      nested: { tag: 'F', value: { ok: { tag: 't', value: true } } },
    });
  });

  it('passes the message through untouched when interceptors return nothing', async () => {
    const host = await hostWith(plugin('quiet', (api) => api.onPublish(() => undefined)));
    expect(host.interceptPublish(message)).toBe(message);
  });

  it('refuses with the plugin code (406 when it is no reply code), and counts a throwing interceptor as 541', async () => {
    const refuser = await hostWith(plugin('no', (api) => api.onPublish(() => ({ refuse: { code: 42, text: 'nope' } }))));
    expect(refuser.interceptPublish(message)).toEqual({ refuse: { code: 406, text: 'nope' } });
    expect(refuser.counters.refusedPublishes).toBe(1);
    const thrower = await hostWith(plugin('oops', (api) => api.onPublish(() => { throw new Error('bad'); })));
    expect(thrower.interceptPublish(message)).toEqual({ refuse: { code: 541, text: "plugin 'oops' failed while intercepting a publish: bad" } });
    expect(thrower.counters.publishInterceptorFailures).toBe(1);
  });

  it('delivers the message as it was when a deliver interceptor throws, and counts it', async () => {
    const host = await hostWith(plugin('d', (api) => api.onDeliver(() => { throw new Error('x'); })));
    expect(host.interceptDeliver(message, 'q', false)).toBe(message);
    expect(host.counters.deliverInterceptorFailures).toBe(1);
  });

  it('tells every listener, counting the ones that throw', async () => {
    const heard: string[] = [];
    const host = await hostWith(
      plugin('first', (api) => api.on('node.down', () => { throw new Error('listener bug'); })),
      plugin('second', (api) => api.on('node.down', (e) => { heard.push(e.node); })),
    );
    host.emit('node.down', { node: 'n2' });
    expect(heard).toEqual([]); // after the current turn, never inside the broker's call
    await new Promise((r) => setImmediate(r));
    expect(heard).toEqual(['n2']);
    expect(host.counters.listenerFailures).toBe(1);
  });

  it('asks auth backends in order; a throwing one counts as not admitting', async () => {
    const host = await hostWith(
      plugin('broken', (api) => api.authBackend({ authenticate: () => { throw new Error('down'); } })),
      plugin('ldap', (api) => api.authBackend({ authenticate: (u, p) => (u === 'ann' ? { allow: p === 'pw', tags: ['admin'] } : null) })),
    );
    const info = { remoteAddress: '127.0.0.1', remotePort: 1, mechanism: 'PLAIN', node: 'n1' };
    expect((await host.authenticate('ann', 'pw', info))?.tags).toEqual(['admin']);
    expect(await host.authenticate('ann', 'no', info)).toBeNull();
    expect(await host.authenticate('bob', 'pw', info)).toBeNull();
    expect(host.counters.authBackendFailures).toBe(3);
  });
});
