// The audit trail of management changes: one log line per change to users, permissions, vhosts,
// limits, policies, definitions or node membership, saying who asked (a user, or the cluster peer
// such as a ctl process), from where (its address), what was asked and how it ended. Written by the
// node that took the request, at info under the event 'audit', so it survives log-level changes
// below warn only if the operator keeps info; secrets (passwords, hashes) are never in it.

import type { NodeId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import type { GroupHost } from './group-host.js';

export interface AuditEntry {
  /** Who asked: a user name, or 'cluster-peer:<id>' for a call over the cluster port. */
  readonly actor: string;
  /** Where from: an address, or '' when the layer that took the request does not know it. */
  readonly source: string;
  /** What: the command, e.g. 'set-policy', 'add-node'. */
  readonly action: string;
  /** Its arguments, without secrets. */
  readonly details: Readonly<Record<string, unknown>>;
  /** 'ok', or the refusal's text. */
  readonly outcome: string;
}

const secretKeys = /pass|secret|hash|token|key$/i;

export function audit(logger: Logger, e: AuditEntry): void {
  const details: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.details)) details[k] = secretKeys.test(k) ? '(hidden)' : v;
  logger.info('audit', { actor: e.actor, source: e.source, action: e.action, details: JSON.stringify(details), outcome: e.outcome });
}

/** Runs a management change and writes its audit line whatever the outcome, then returns or throws as `change` did. */
export async function audited<T>(logger: Logger | undefined, who: Omit<AuditEntry, 'outcome'>, change: () => Promise<T>): Promise<T> {
  try {
    const r = await change();
    if (logger !== undefined) audit(logger, { ...who, outcome: 'ok' });
    return r;
  } catch (e) {
    if (logger !== undefined) audit(logger, { ...who, outcome: e instanceof Error ? e.message : String(e) });
    throw e;
  }
}

/** Who asked, from where, for the audit line of a change asked over the cluster port (a ctl process is a transient peer). */
export function caller(d: { readonly groupHost: GroupHost } | { readonly host: GroupHost }, from: NodeId, action: string,
  details: Record<string, unknown>): Omit<AuditEntry, 'outcome'> {
  const host = 'groupHost' in d ? d.groupHost : d.host;
  return { actor: `cluster-peer:${from}`, source: host.transport.remoteAddressOf(from) ?? '', action, details };
}
