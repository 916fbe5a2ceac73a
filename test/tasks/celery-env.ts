// Celery for the interoperability test: Debian 12's python3-celery (celery 5.2.6, kombu 5.2.4,
// py-amqp 5.1.1) under the system Python (/usr/bin/python3, not a pyenv one first on PATH),
// installed with apt-get when missing; when that is impossible, the reason, so the test says it.

import { existsSync } from 'node:fs';
import { run } from '../../bench/broker-process.js';

export const systemPython = '/usr/bin/python3';
const packages = ['python3-celery'];

export interface CeleryVersions {
  celery: string;
  kombu: string;
  amqp: string;
}

async function versions(): Promise<CeleryVersions | string> {
  if (!existsSync(systemPython)) return `${systemPython} does not exist`;
  const r = await run(systemPython, ['-c', 'import celery, kombu, amqp; print(celery.__version__, kombu.__version__, amqp.__version__)'], { timeoutMs: 60_000 });
  if (r.code !== 0) return r.stderr.trim().split('\n').slice(-1)[0] ?? `exit ${r.code}`;
  const [celery = '', kombu = '', amqp = ''] = r.stdout.trim().split(/\s+/);
  return { celery, kombu, amqp };
}

/** Celery's versions once importable (installing the Debian packages if needed), or why it cannot be had. */
export async function ensureCelery(log: (line: string) => void): Promise<CeleryVersions | string> {
  const have = await versions();
  if (typeof have !== 'string') return have;
  if (process.getuid?.() !== 0) return `python3-celery is not installed (${have}) and installing it needs root (apt-get install ${packages.join(' ')})`;
  if (!existsSync('/usr/bin/apt-get')) return `python3-celery is not installed (${have}) and there is no apt-get on this machine`;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`celery: not installed (${have}); apt-get install -y ${packages.join(' ')} (up to 10 minutes)`);
  let install = await run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, timeoutMs: 600_000 });
  if (install.code !== 0) {
    // Package lists missing or stale: refresh them once and try again.
    const update = await run('apt-get', ['update'], { env, timeoutMs: 300_000 });
    if (update.code !== 0) return `apt-get update failed: ${update.stderr.trim().slice(-400)}`;
    install = await run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, timeoutMs: 600_000 });
  }
  if (install.code !== 0) return `apt-get install ${packages.join(' ')} failed: ${install.stderr.trim().slice(-400)}`;
  const now = await versions();
  return typeof now === 'string' ? `python3-celery installed but celery does not import: ${now}` : now;
}
