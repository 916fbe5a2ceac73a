// Where a node's plugin list and settings come from: --plugin (repeatable), ESPRESSO_PLUGINS
// (comma-separated), the config file's `plugins` and `pluginConfig`, with flags over the
// environment over the file, as every other setting.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildServerConfig } from '../../src/cli/server-command.js';
import type { ServerConfig } from '../../src/cli/options.js';

const dir = mkdtempSync(join(tmpdir(), 'espresso-plugin-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(argv: string[], env: Record<string, string> = {}): ServerConfig {
  const c = buildServerConfig(argv, env);
  if (c === 'help') throw new Error('help');
  return c;
}

describe('plugin settings', () => {
  it('none by default', () => {
    const c = config([]);
    expect(c.plugins).toEqual([]);
    expect(c.pluginConfig).toEqual({});
  });

  it('--plugin is repeatable and keeps the order', () => {
    expect(config(['--plugin', './a.mjs', '--plugin=consistent-hash', '--plugin', 'b.mjs']).plugins).toEqual(['./a.mjs', 'consistent-hash', 'b.mjs']);
  });

  it('ESPRESSO_PLUGINS is comma-separated, and ESPRESSO_PLUGIN_CONFIG is JSON', () => {
    const c = config([], { ESPRESSO_PLUGINS: 'delayed-message, ./x.mjs', ESPRESSO_PLUGIN_CONFIG: '{"x":{"level":3}}' });
    expect(c.plugins).toEqual(['delayed-message', './x.mjs']);
    expect(c.pluginConfig).toEqual({ x: { level: 3 } });
  });

  it('the config file has plugins and pluginConfig; flags win over it', () => {
    const file = join(dir, 'espresso.json');
    writeFileSync(file, JSON.stringify({ plugins: ['auth-http'], pluginConfig: { 'auth-http': { user_path: 'http://127.0.0.1:1/u' } } }));
    const c = config(['--config', file]);
    expect(c.plugins).toEqual(['auth-http']);
    expect(c.pluginConfig).toEqual({ 'auth-http': { user_path: 'http://127.0.0.1:1/u' } });
    expect(config(['--config', file, '--plugin', 'consistent-hash']).plugins).toEqual(['consistent-hash']);
  });

  it('refuses plugin settings that are not a JSON object, saying where they came from', () => {
    expect(() => config(['--plugin-config', '[1]'])).toThrow('flag --plugin-config: expected a JSON object');
    expect(() => config([], { ESPRESSO_PLUGIN_CONFIG: '{oops' })).toThrow('environment variable ESPRESSO_PLUGIN_CONFIG: not valid JSON');
  });
});
