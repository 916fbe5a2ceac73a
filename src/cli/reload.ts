// What SIGHUP does to a running node (systemd's `reload`): the configuration is built again from
// the same sources as at start (the --config file read anew, the environment and flags the process
// started with, which still win over the file), and the settings a running node can change take
// effect at once:
// - logLevel, for every log line from then on;
// - heartbeat, frame-max, channel-max (proposed to connections opened from then on), max message
//   size (checked on publishes from then on), max connections, loopback users (checked at login);
// - the memory high watermark and the disk free limit (the alarms are re-armed);
// - failed-login throttling (delay, failures, lockout) and the node connection rate, for the next
//   login or connection;
// - the client TLS certificate, key and CA: read again on every reload, even under the same paths
//   (renewed in place), for connections accepted from then on; files that fail to load leave the
//   ones in use (logged). --tls-port, --tls-verify and --tls-only need a restart.
// Every other setting (ports, addresses, data directory, node id, cluster settings, the default
// user, which is only created in a new data directory) needs a restart: a changed one is logged
// as such and the running value is kept. A file that fails to load is logged and changes nothing.

import { reloadableBrokerKeys, type ReloadableBrokerKey } from '../broker/server.js';
import type { ServerConfig } from './options.js';

export interface ReloadPlan {
  /** Reloadable settings whose value changed, with the new value. */
  apply: Partial<Pick<ServerConfig, ReloadableBrokerKey>>;
  /** Settings that changed but need a restart (kept at their running value). */
  needRestart: string[];
}

export function planReload(running: ServerConfig, next: ServerConfig): ReloadPlan {
  const apply: Record<string, unknown> = {};
  const needRestart: string[] = [];
  const reloadable = new Set<string>(reloadableBrokerKeys);
  for (const key of Object.keys(next) as Array<keyof ServerConfig>) {
    if (JSON.stringify(running[key]) === JSON.stringify(next[key])) continue;
    if (reloadable.has(key)) apply[key] = next[key];
    else needRestart.push(key);
  }
  return { apply: apply as ReloadPlan['apply'], needRestart: needRestart.sort() };
}
