// Loading the plugins a node is configured with (--plugin, ESPRESSO_PLUGINS, config key
// `plugins`): each entry is a path to an ES module (relative to the working directory) or the name
// of a plugin shipped in the repo's plugins/ folder; the module's default export is the plugin.
// The plugin host (broker/plugin-host.ts) then runs their setups in order.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { EspressoPlugin } from '../broker/plugin-api.js';
import { PluginHost, type LoadedPlugin } from '../broker/plugin-host.js';
import type { Logger } from '../lib/log.js';
import { ConfigError, ExitCode } from './config-loader.js';
import type { PluginSettings } from './options.js';

/** The plugins shipped in plugins/, by the name --plugin accepts. */
export const shippedPlugins: readonly string[] = ['consistent-hash', 'delayed-message', 'auth-http'];

/** plugins/<name>.ts beside src/ when run from the sources, dist/plugins/<name>.js when built. */
export function shippedPluginPath(name: string): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`../../plugins/${name}${ext}`, import.meta.url));
}

async function importPlugin(entry: string): Promise<{ plugin: EspressoPlugin; source: string }> {
  const path = shippedPlugins.includes(entry) ? shippedPluginPath(entry) : resolve(entry);
  if (!existsSync(path)) {
    throw new ConfigError(`plugin '${entry}' not found: no file ${path} (give a path to an ES module, or one of ${shippedPlugins.join(', ')})`, ExitCode.NoInput);
  }
  let module: { default?: unknown };
  try {
    module = await import(pathToFileURL(path).href) as { default?: unknown };
  } catch (e) {
    throw new ConfigError(`plugin '${entry}' could not be loaded from ${path}: ${e instanceof Error ? e.message : String(e)}`, ExitCode.Config);
  }
  return { plugin: module.default as EspressoPlugin, source: entry };
}

/**
 * Imports and sets up every configured plugin. A module that does not load, or a plugin that
 * throws in setup, is a ConfigError naming it: the node does not start.
 */
export async function loadPlugins(
  settings: { readonly plugins: ReadonlyArray<string | EspressoPlugin>; readonly pluginConfig: PluginSettings['pluginConfig'] }, nodeId: string, logger: Logger,
): Promise<PluginHost> {
  const host = new PluginHost(logger.child('plugins'), nodeId);
  const loaded: LoadedPlugin[] = [];
  for (const entry of settings.plugins) {
    // An object is a plugin handed in by an embedding program (startNode); a string is a module to import.
    const { plugin, source } = typeof entry === 'string' ? await importPlugin(entry) : { plugin: entry, source: '(in-process)' };
    const name = typeof plugin?.name === 'string' ? plugin.name : '';
    loaded.push({ plugin, source, config: settings.pluginConfig[name] ?? {} });
  }
  try {
    await host.load(loaded);
  } catch (e) {
    host.close();
    throw new ConfigError(e instanceof Error ? e.message : String(e), ExitCode.Config);
  }
  return host;
}
