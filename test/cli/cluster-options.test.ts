// The server's cluster settings as an operator meets them: --cluster-port (default AMQP port +
// 20000), --http-port (default AMQP port + 10000), --node-id, the cluster secret from flag/env or
// kept in the data dir, and their errors.

import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ExitCode } from '../../src/cli/config-loader.js';
import { clusterPortOf, clusterSecretOf } from '../../src/cli/node-cluster.js';
import { httpPortOf } from '../../src/cli/node-observe.js';
import { buildServerConfig } from '../../src/cli/server-command.js';
import type { ServerConfig } from '../../src/cli/options.js';

const root = new URL('../../', import.meta.url).pathname;
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const tmp = mkdtempSync(join(tmpdir(), 'espresso-cluster-opts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function config(argv: string[], env: Record<string, string> = {}): ServerConfig {
  const c = buildServerConfig(argv, env);
  if (c === 'help') throw new Error('unexpected help');
  return c;
}

describe('cluster options', () => {
  it('puts the cluster port at the AMQP port + 20000 unless told, and any free port with --port 0', () => {
    expect(clusterPortOf(config([]))).toBe(25672);
    expect(clusterPortOf(config(['--port', '5673']))).toBe(25673);
    expect(clusterPortOf(config(['--port', '5673', '--cluster-port', '7000']))).toBe(7000);
    expect(clusterPortOf(config(['--port', '0']))).toBe(0);
    expect(clusterPortOf(config(['--port', '5673'], { ESPRESSO_CLUSTER_PORT: '0' }))).toBe(0);
    let err: unknown;
    try {
      clusterPortOf(config(['--port', '60000']));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain('--cluster-port');
  });

  it('puts the HTTP port at the AMQP port + 10000 (RabbitMQ\'s 15672) unless told, any free one with --port 0', () => {
    expect(httpPortOf(config([]))).toBe(15672);
    expect(httpPortOf(config(['--port', '5673']))).toBe(15673);
    expect(httpPortOf(config(['--port', '5673', '--http-port', '8080']))).toBe(8080);
    expect(httpPortOf(config(['--port', '5673'], { ESPRESSO_HTTP_PORT: '0' }))).toBe(0);
    expect(httpPortOf(config(['--port', '0']))).toBe(0);
    expect(() => httpPortOf(config(['--port', '60000']))).toThrow(/HTTP port 70000 .*--http-port/);
    expect(() => config(['--http-port', 'x'])).toThrow(/--http-port: expected an integer/);
    expect(() => config(['--metrics-auth', 'maybe'])).toThrow(/--metrics-auth: expected true or false/);
    expect(config(['--metrics-auth', 'true']).metricsAuth).toBe(true);
    expect(config([]).metricsAuth).toBe(false);
    expect(config([]).traceSample).toBe(100);
  });

  it('keeps the secret a data directory was created with, given or generated, and refuses another', () => {
    const given = join(tmp, 'secret-given');
    mkdirSync(given);
    expect(clusterSecretOf(config(['--data-dir', given, '--cluster-secret', 'from-flag']))).toBe('from-flag');
    expect(readFileSync(join(given, 'cluster-secret'), 'utf8').trim()).toBe('from-flag');
    expect(statSync(join(given, 'cluster-secret')).mode & 0o077).toBe(0);
    // Restarted without it (from its `ps` command line): the kept one.
    expect(clusterSecretOf(config(['--data-dir', given]))).toBe('from-flag');
    expect(clusterSecretOf(config(['--data-dir', given], { ESPRESSO_CLUSTER_SECRET: 'from-flag' }))).toBe('from-flag');
    expect(() => clusterSecretOf(config(['--data-dir', given], { ESPRESSO_CLUSTER_SECRET: 'from-env' }))).toThrow(
      expect.objectContaining({ exitCode: 78, message: expect.stringContaining('differs from the one data directory') }),
    );

    const generated = join(tmp, 'secret-generated');
    mkdirSync(generated);
    const secret = clusterSecretOf(config(['--data-dir', generated]));
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(clusterSecretOf(config(['--data-dir', generated]))).toBe(secret);
    expect(readFileSync(join(generated, 'cluster-secret'), 'utf8').trim()).toBe(secret);

    // A node's directory whose secret file is gone: no new random secret, a sentence instead.
    const orphan = join(tmp, 'secret-orphan');
    mkdirSync(join(orphan, 'raft'), { recursive: true });
    expect(() => clusterSecretOf(config(['--data-dir', orphan]))).toThrow(
      expect.objectContaining({ exitCode: 78, message: expect.stringContaining('holds a node but no cluster secret') }),
    );
  });

  it('shows the new flags in the help', () => {
    const r = spawnSync(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), 'server', '--help'], { cwd: tmp, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    for (const flag of ['--cluster-port', '--node-id', '--cluster-secret', 'ESPRESSO_CLUSTER_SECRET', '--http-port', '--metrics-auth', '--trace-sample']) expect(r.stdout).toContain(flag);
  });

  it('reports a cluster port in use with exit 69 and names the flag to change', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    const r = spawnSync(process.execPath, [
      '--import', tsxLoader, join(root, 'src/cli/main.ts'), 'server', '--port', '0', '--cluster-port', String(port), '--data-dir', join(tmp, 'busy'),
    ], { cwd: tmp, encoding: 'utf8', timeout: 30_000 });
    blocker.close();
    expect(r.status).toBe(ExitCode.Unavailable);
    expect(r.stderr).toContain(`cluster port ${port}`);
    expect(r.stderr).toContain('--cluster-port');
    // Only our sentence: grpc's own "E No address added out of total 1 resolved" stays out of stderr.
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/^E No address added/m);
  });

  it('reports an HTTP port in use with exit 69 and names the flag to change', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    const r = spawnSync(process.execPath, [
      '--import', tsxLoader, join(root, 'src/cli/main.ts'), 'server', '--port', '0', '--http-port', String(port), '--data-dir', join(tmp, 'busy-http'),
    ], { cwd: tmp, encoding: 'utf8', timeout: 30_000 });
    blocker.close();
    expect(r.status).toBe(ExitCode.Unavailable);
    expect(r.stderr).toContain(`HTTP port ${port} on 127.0.0.1 is already in use`);
    expect(r.stderr).toContain('--http-port');
  });
});
