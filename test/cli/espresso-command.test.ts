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
import { freePorts } from './cluster-nodes.js';

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
    // Each flag shows its default, as `cluster up --help` does.
    expect(server.stdout).toMatch(/--port <int> .*\[5672; ESPRESSO_PORT\]/);
    expect(server.stdout).toMatch(/--data-dir <string> .*\[\.\/data; ESPRESSO_DATA_DIR\]/);
    expect(server.stdout).toMatch(/--cluster-port <int> .*\[AMQP port \+ 20000; ESPRESSO_CLUSTER_PORT\]/);
    expect(server.stdout).toMatch(/--http-port <int> .*\[AMQP port \+ 10000; ESPRESSO_HTTP_PORT\]/);
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
    expect(r.stderr).toContain(`AMQP port ${port} on 127.0.0.1 is already in use`);
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
    expect(e.message).toContain("unknown key 'prot' in config file");
    expect(e.message).toContain("did you mean 'port'?");
    expect(e.exitCode).toBe(ExitCode.Config);
    expect(configError(() => buildServerConfig(['--log-level', 'loud'], {})).exitCode).toBe(ExitCode.Usage);
  });

  it('refuses a misspelled ESPRESSO_* variable with exit 78, naming the nearest known one', () => {
    const e = configError(() => buildServerConfig([], { ESPRESSO_PROT: '5673' }));
    expect(e.exitCode).toBe(ExitCode.Config);
    expect(e.message).toBe("unknown environment variable ESPRESSO_PROT; did you mean ESPRESSO_PORT? (the ESPRESSO_* variables are listed by 'espresso server --help')");
    const r = espresso(['server', '--data-dir', join(tmp, 'env-typo')], { ESPRESSO_DATADIR: join(tmp, 'elsewhere') });
    expect(r.code).toBe(ExitCode.Config);
    expect(r.stderr).toContain('did you mean ESPRESSO_DATA_DIR?');
    // Variables of other programs are left alone.
    expect(configError(() => buildServerConfig([], { ESPRESSO_PORT: 'x', ESPRESSOX: '1' })).message).toContain('ESPRESSO_PORT');
  });

  it('says what is wrong with --bind, a file as --data-dir, and a ctl mistake, once prefixed', () => {
    const bind = espresso(['server', '--bind', 'not-an-address', '--data-dir', join(tmp, 'bind')]);
    expect(bind.code).toBe(ExitCode.Usage);
    expect(bind.stderr).toMatch(/^espresso: bind address 'not-an-address' is not an IP address nor a host name that resolves \(E[A-Z_]+\); give --bind an address of this machine such as 127\.0\.0\.1/);
    expect(bind.stderr).not.toContain('internal error');
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'not a directory');
    for (const dir of [file, join(file, 'below')]) {
      const r = espresso(['server', '--data-dir', dir]);
      expect(r.code).toBe(ExitCode.CantCreate);
      expect(r.stderr).toBe(`espresso: data directory '${dir}' cannot be used: '${file}' is a file, not a directory; give --data-dir a directory (it is created if missing)\n`);
    }
    const ctl = espresso(['ctl', 'forget-node']);
    expect(ctl.code).toBe(ExitCode.Usage);
    expect(ctl.stderr).toMatch(/^espresso ctl /);
    expect(ctl.stderr).not.toContain('espresso: espresso');
  });

  it('refuses a second node on a running node\'s data directory or AMQP port, naming which', async () => {
    const [amqpPort, clusterPort, otherAmqp, otherCluster] = await freePorts(4);
    const dir = join(tmp, 'taken');
    const first = spawn(process.execPath, ['--import', tsxLoader, join(root, 'src/cli/main.ts'), 'server', '--port', String(amqpPort), '--cluster-port', String(clusterPort), '--data-dir', dir], {
      cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      first.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      for (let i = 0; i < 300 && !out.includes('"node started"'); i++) await new Promise((r) => setTimeout(r, 100));
      const pid = (JSON.parse(out.split('\n').find((l) => l.includes('"node started"'))!) as { pid: number }).pid;
      expect(pid).toBe(first.pid);
      const sameDir = espresso(['server', '--port', String(otherAmqp), '--cluster-port', String(otherCluster), '--data-dir', dir]);
      expect(sameDir.code).toBe(ExitCode.Unavailable);
      expect(sameDir.stderr).toBe(`espresso: data directory '${dir}' is in use by another node (pid ${pid}); stop it, or give this node its own --data-dir\n`);
      const samePorts = espresso(['server', '--port', String(amqpPort), '--cluster-port', String(clusterPort), '--data-dir', join(tmp, 'taken-2')]);
      expect(samePorts.code).toBe(ExitCode.Unavailable);
      expect(samePorts.stderr).toBe(`espresso: AMQP port ${amqpPort} on 127.0.0.1 is already in use (another espresso node?); stop the other process or pick another with --port\n`);
      expect(samePorts.stdout).toBe('');
    } finally {
      first.kill('SIGKILL');
    }
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
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const line of lines) expect(line).toHaveProperty('component');
    // The first line a person reads says what runs where.
    expect(lines[0]).toMatchObject({
      level: 'info', event: 'node started', version: '0.1.0', nodeId: 'espresso@localhost', pid: child.pid, port,
      bind: '127.0.0.1', dataDir: join(tmp, 'data'), members: 'espresso@localhost',
    });
    expect(lines[0]!['clusterPort']).toEqual(expect.any(Number));
    expect(lines[0]!['httpPort']).toEqual(expect.any(Number));
  });
});
