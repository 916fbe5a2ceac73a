// The espresso command as a person meets it: help on every command, exit codes and messages for
// mistakes, and configuration precedence (file < ESPRESSO_* env < flags).

import { spawn, spawnSync } from 'node:child_process';
import amqp from 'amqplib';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildServerConfig } from '../../src/cli/server-command.js';
import { ConfigError, ExitCode } from '../../src/cli/config-loader.js';

const root = new URL('../../', import.meta.url).pathname;
// tsx's loader by absolute URL: the child runs in a scratch directory without node_modules.
const tsxLoader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const tmp = mkdtempSync(join(tmpdir(), 'espresso-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function espresso(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), ...args], {
    cwd: tmp,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('espresso command line', () => {
  it('prints help for the command and for server, exiting 0', () => {
    const main = espresso(['--help']);
    expect(main.code).toBe(0);
    expect(main.stdout).toContain('espresso <command>');
    const server = espresso(['server', '--help']);
    expect(server.code).toBe(0);
    expect(server.stdout).toContain('--port');
    expect(server.stdout).toContain('ESPRESSO_DATA_DIR');
  });

  it('rejects an unknown command and an unknown flag with exit 64 and a hint', () => {
    const cmd = espresso(['serve']);
    expect(cmd.code).toBe(ExitCode.Usage);
    expect(cmd.stderr).toContain("unknown command 'serve'");
    const flag = espresso(['server', '--prot', '1']);
    expect(flag.code).toBe(ExitCode.Usage);
    expect(flag.stderr).toContain("unknown flag '--prot'");
    expect(flag.stderr).toContain('espresso server --help');
  });

  it('reports a missing config file with exit 66 and bad JSON with exit 78', () => {
    const missing = espresso(['server', '--config', join(tmp, 'nope.json')]);
    expect(missing.code).toBe(ExitCode.NoInput);
    expect(missing.stderr).toContain('nope.json');
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '{"port": ');
    const r = espresso(['server', '--config', bad]);
    expect(r.code).toBe(ExitCode.Config);
    expect(r.stderr).toContain('not valid JSON');
  });

  it('reports a port in use with exit 69 and names the fix', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    // Any free cluster port: the default (AMQP port + 20000) is out of range for high ephemeral ports.
    const r = espresso(['server', '--port', String(port), '--cluster-port', '0', '--data-dir', join(tmp, 'd69')]);
    blocker.close();
    expect(r.code).toBe(ExitCode.Unavailable);
    expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
    expect(r.stderr).toContain('--port');
  });

  it('takes flags over environment over file over defaults', () => {
    const file = join(tmp, 'prec.json');
    writeFileSync(file, JSON.stringify({ port: 1111, bind: '127.0.0.2', heartbeatSec: 7, channelMax: 10 }));
    const env = { ESPRESSO_PORT: '2222', ESPRESSO_HEARTBEAT_SEC: '9' };
    const c = buildServerConfig(['--config', file, '--port=3333'], env);
    if (c === 'help') throw new Error('unexpected help');
    expect(c.port).toBe(3333);
    expect(c.heartbeatSec).toBe(9);
    expect(c.bind).toBe('127.0.0.2');
    expect(c.channelMax).toBe(10);
    expect(c.dataDir).toBe('./data');
    expect(c.frameMaxBytes).toBe(131072);
  });

  it('names the source of a bad value', () => {
    expect(configError(() => buildServerConfig(['--port', 'abc'], {})).message).toContain('flag --port');
    expect(configError(() => buildServerConfig([], { ESPRESSO_PORT: '70000' })).message).toContain('ESPRESSO_PORT');
    const file = join(tmp, 'unknown-key.json');
    writeFileSync(file, JSON.stringify({ prot: 1 }));
    const e = configError(() => buildServerConfig(['--config', file], {}));
    expect(e.message).toContain("unknown key 'prot'");
    expect(e.exitCode).toBe(ExitCode.Config);
    expect(configError(() => buildServerConfig(['--log-level', 'loud'], {})).exitCode).toBe(ExitCode.Usage);
  });

  it('starts a node an amqplib client can use, logs JSON lines, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), 'server', '--port', '0', '--data-dir', join(tmp, 'data')], {
      cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start line in: ${out}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"event":"node started".*"port":(\d+)/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
    const ch = await conn.createChannel();
    await ch.assertQueue('cli-q');
    ch.sendToQueue('cli-q', Buffer.from('hi'));
    let got: amqp.GetMessage | false = false;
    for (let i = 0; i < 100 && got === false; i++) got = await ch.get('cli-q', { noAck: true });
    expect(got && got.content.toString()).toBe('hi');
    await conn.close();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const line of out.trim().split('\n')) expect(JSON.parse(line)).toHaveProperty('component');
  });
});
