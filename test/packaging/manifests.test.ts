// The deployment files under packaging/, checked as far as this machine can (no container engine,
// no Kubernetes cluster, no systemd as init here): the Kubernetes manifests against the Kubernetes
// API schema (kubernetes-models' validators, generated from the OpenAPI spec) and against what
// espresso needs of them; the container image's and the systemd unit's commands parsed by the real
// command line, with the settings they give; the files they copy exist.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ctlHelp } from '../../src/cli/ctl.js';
import { loadConfig } from '../../src/cli/config-loader.js';
import { buildServerConfig } from '../../src/cli/server-command.js';
import { serverOptions } from '../../src/cli/options.js';

const root = new URL('../../', import.meta.url).pathname;
const packaging = join(root, 'packaging');

type Doc = Record<string, unknown> & { kind: string; metadata: { name: string } };
const validators: Record<string, (d: unknown) => { validate(): void }> = {
  ConfigMap: (d) => new ConfigMap(d as never),
  Service: (d) => new Service(d as never),
  StatefulSet: (d) => new StatefulSet(d as never),
  PodDisruptionBudget: (d) => new PodDisruptionBudget(d as never),
};

function manifests(text = readFileSync(join(packaging, 'kubernetes/espresso.yaml'), 'utf8')): Doc[] {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join('; '));
    return d.toJS() as Doc;
  });
}

/** Validates one object against the Kubernetes schema of its kind (throws naming the field). */
function validate(doc: Doc): void {
  const make = validators[doc.kind];
  if (make === undefined) throw new Error(`no schema check for kind ${doc.kind}`);
  make(doc).validate();
}

interface Container {
  args: string[];
  env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  ports: Array<{ name: string; containerPort: number }>;
  readinessProbe: { exec: { command: string[] } };
  livenessProbe: { tcpSocket: { port: string } };
  lifecycle: { preStop: { exec: { command: string[] } } };
  volumeMounts: Array<{ name: string; mountPath: string }>;
}

function byKind(docs: Doc[], kind: string, name?: string): Doc & { spec: Record<string, never> } {
  const d = docs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (d === undefined) throw new Error(`no ${kind} ${name ?? ''}`);
  return d as Doc & { spec: Record<string, never> };
}

/** The container's environment as the pod gets it, $(VAR) expanded as Kubernetes does. */
function podEnv(c: Container, pod: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...pod };
  for (const e of c.env) {
    if (e.value !== undefined) env[e.name] = e.value.replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => env[v] ?? `$(${v})`);
    else if (e.name.startsWith('ESPRESSO_')) env[e.name] = `from-secret-${e.name}`;
  }
  return env;
}

describe('Kubernetes manifests (packaging/kubernetes/espresso.yaml)', () => {
  const docs = manifests();

  it('every object passes the Kubernetes API schema of its kind', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'PodDisruptionBudget', 'Service', 'Service', 'StatefulSet']);
    for (const d of docs) validate(d);
  });

  // (The schema, as the OpenAPI spec, does not refuse unknown fields: a misspelled field would pass
  // here and only the API server's strict field validation would catch it.)
  it('the schema check catches a wrong type, a bad enum value and a missing required field', () => {
    const spec = (d: Doc): Record<string, unknown> => (d as unknown as { spec: Record<string, unknown> }).spec;
    const bad = manifests().find((d) => d.kind === 'StatefulSet')!;
    spec(bad)['replicas'] = 'three';
    expect(() => validate(bad)).toThrow(/replicas/);
    const policy = manifests().find((d) => d.kind === 'StatefulSet')!;
    spec(policy)['podManagementPolicy'] = 'AllAtOnce';
    expect(() => validate(policy)).toThrow(/podManagementPolicy/);
    const headless = manifests().find((d) => d.kind === 'Service')!;
    (spec(headless)['ports'] as Array<Record<string, unknown>>).forEach((p) => delete p['port']);
    expect(() => validate(headless)).toThrow(/port/);
  });

  it('a headless Service publishing not-ready pods is what the StatefulSet discovers its peers by', () => {
    const sts = byKind(docs, 'StatefulSet');
    const headless = byKind(docs, 'Service', sts.spec['serviceName']) as unknown as { spec: { clusterIP: string; publishNotReadyAddresses: boolean; selector: Record<string, string> } };
    expect(headless.spec.clusterIP).toBe('None');
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    const template = (sts.spec as unknown as { template: { metadata: { labels: Record<string, string> } } }).template;
    expect(template.metadata.labels).toMatchObject(headless.spec.selector);
    // Every pod must start at once: one alone never becomes ready (no majority).
    expect(sts.spec['podManagementPolicy']).toBe('Parallel');
  });

  it('the pod\'s settings parse as espresso server\'s, with DNS discovery of exactly the replicas and its own stable name advertised', () => {
    const sts = byKind(docs, 'StatefulSet');
    const c = (sts.spec as unknown as { template: { spec: { containers: Container[] } } }).template.spec.containers[0]!;
    const env = podEnv(c, { POD_NAME: 'espresso-1', POD_NAMESPACE: 'mq' });
    const configMap = byKind(docs, 'ConfigMap') as unknown as { data: Record<string, string> };
    expect(c.volumeMounts.find((m) => m.name === 'config')?.mountPath).toBe('/etc/espresso');
    expect(c.args.slice(0, 1)).toEqual(['server']);
    // The ConfigMap's file, mounted at /etc/espresso, read as the node reads it.
    const file = join(mkdtempSync(join(tmpdir(), 'espresso-manifest-')), 'espresso.json');
    writeFileSync(file, configMap.data['espresso.json']!);
    const argv = c.args.slice(1).map((a) => (a === '/etc/espresso/espresso.json' ? file : a));
    const config = buildServerConfig(argv, env);
    if (config === 'help') throw new Error('help');
    expect(config.nodeId).toBe('espresso-1');
    expect(config.advertise).toBe(`espresso-1.${sts.spec['serviceName']}.mq.svc.cluster.local`);
    expect(config.discoverDns).toBe(`${sts.spec['serviceName']}.mq.svc.cluster.local`);
    expect(config.discoverNodes).toBe(sts.spec['replicas']);
    expect(config.bind).toBe('0.0.0.0');
    expect(config.dataDir).toBe(c.volumeMounts.find((m) => m.name === 'data')?.mountPath);
    expect(config.logLevel).toBe('info');
    expect(c.ports.find((p) => p.name === 'cluster')?.containerPort).toBe(config.clusterPort);
    expect(c.ports.find((p) => p.name === 'amqp')?.containerPort).toBe(config.port);
    // HTTP (/metrics) on RabbitMQ's ports: AMQP + 10000, cluster AMQP + 20000; the headless Service
    // reaches every pod's, and the pod asks Prometheus to scrape it there.
    expect(config.httpPort).toBe(15672);
    expect(config.clusterPort).toBe(config.port + 20000);
    expect(c.ports.find((p) => p.name === 'http')?.containerPort).toBe(config.httpPort);
    const headless = byKind(docs, 'Service', sts.spec['serviceName']) as unknown as { spec: { ports: Array<{ name: string; port: number }> } };
    expect(headless.spec.ports.map((p) => p.name).sort()).toEqual(['amqp', 'cluster', 'http']);
    const annotations = (sts.spec as unknown as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
    expect(Number(annotations['prometheus.io/port'])).toBe(config.httpPort);
    expect(c.livenessProbe.tcpSocket.port).toBe('cluster');
    // Every ESPRESSO_* variable it sets is one the server knows.
    const known = new Set(serverOptions.map((o) => o.env));
    for (const e of c.env) if (e.name.startsWith('ESPRESSO_')) expect(known.has(e.name), e.name).toBe(true);
  });

  it('readiness runs `espresso ctl ready` and preStop `espresso ctl drain` on the pod\'s own cluster port', () => {
    const sts = byKind(docs, 'StatefulSet');
    const c = (sts.spec as unknown as { template: { spec: { containers: Container[] } } }).template.spec.containers[0]!;
    const probe = c.readinessProbe.exec.command;
    const stop = c.lifecycle.preStop.exec.command;
    expect(probe.slice(0, 2)).toEqual(['espresso', 'ctl']);
    expect(probe.at(-1)).toBe('ready');
    expect(stop.at(-1)).toBe('drain');
    for (const cmd of [probe, stop]) expect(cmd[cmd.indexOf('--cluster-address') + 1]).toBe('127.0.0.1:25672');
    expect(ctlHelp).toMatch(/^ {2}ready /m);
    expect(ctlHelp).toMatch(/^ {2}drain \[NODE\]/m);
    // The drain must fit in the grace period.
    const drainMs = Number(stop[stop.indexOf('--drain-timeout') + 1]);
    expect(drainMs / 1000).toBeLessThan((sts.spec as unknown as { template: { spec: { terminationGracePeriodSeconds: number } } }).template.spec.terminationGracePeriodSeconds);
  });

  it('the PodDisruptionBudget keeps a majority of the replicas', () => {
    const sts = byKind(docs, 'StatefulSet');
    const pdb = byKind(docs, 'PodDisruptionBudget') as unknown as { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
    const replicas = Number(sts.spec['replicas']);
    expect(pdb.spec.minAvailable).toBeGreaterThan(replicas / 2);
    expect(pdb.spec.minAvailable).toBeLessThan(replicas);
    expect(pdb.spec.selector.matchLabels).toEqual((sts.spec as unknown as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels);
  });
});

describe('container image (packaging/container/Dockerfile)', () => {
  const text = readFileSync(join(packaging, 'container/Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));

  it('builds in one stage and runs in another, as a non-root user, with a data volume and a health check', () => {
    expect(lines.filter((l) => l.startsWith('FROM ')).length).toBe(2);
    expect(text).toMatch(/^COPY --from=build /m);
    const user = /^USER (\S+)/m.exec(text)?.[1];
    expect(user).toBeDefined();
    expect(user!.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(text).toMatch(/^VOLUME \["\/var\/lib\/espresso"\]/m);
    const health = /HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])/m.exec(text)?.[1];
    const cmd = JSON.parse(health!) as string[];
    expect(cmd.slice(0, 2)).toEqual(['espresso', 'ctl']);
    expect(cmd.at(-1)).toBe('ready');
  });

  it('its ENV and CMD give a server config on 0.0.0.0 with data in the volume; every file it copies exists', () => {
    const env: Record<string, string> = {};
    const block = /^ENV ((?:.*\\\n)*.*)$/m.exec(text)![1]!.replace(/\\\n/g, ' ');
    for (const m of block.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
    const cmd = JSON.parse(/^CMD (\[.*\])/m.exec(text)![1]!) as string[];
    expect(cmd[0]).toBe('server');
    const config = buildServerConfig(cmd.slice(1), env);
    if (config === 'help') throw new Error('help');
    expect(config.bind).toBe('0.0.0.0');
    expect(config.dataDir).toBe('/var/lib/espresso');
    expect(config.clusterPort).toBe(25672);
    expect(config.httpPort).toBe(15672);
    expect(text).toMatch(new RegExp(`^EXPOSE ${config.port} ${config.httpPort} ${config.clusterPort}$`, 'm'));
    for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const f of m[1]!.split(' ')) expect(existsSync(join(root, f)), f).toBe(true);
    }
  });
});

describe('systemd unit (packaging/systemd)', () => {
  const unit = readFileSync(join(packaging, 'systemd/espresso.service'), 'utf8');
  const keys = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m !== null) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string): string => keys.get(k)?.[0] ?? '';

  it('runs as a dedicated user with data under /var/lib/espresso, the config in /etc/espresso, and reloads on SIGHUP', () => {
    expect(one('User')).toBe('espresso');
    expect(readFileSync(join(packaging, 'systemd/espresso.sysusers'), 'utf8')).toMatch(/^u espresso - ".*" \/var\/lib\/espresso$/m);
    expect(one('StateDirectory')).toBe('espresso');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('ExecStart')).toBe('/usr/bin/espresso server --config /etc/espresso/espresso.json');
  });

  // systemd-analyze checks every directive; the unit's commands are pointed at /bin/true, since no
  // espresso is installed at /usr/bin here. Skipped (saying so) where systemd is not installed.
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!analyze) console.warn('SKIPPED: systemd-analyze is not installed: the unit is only parsed, not verified');
  it.skipIf(!analyze)('systemd-analyze verify finds nothing to say about the unit (and does about a misspelled directive)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'espresso-unit-'));
    const verify = (text: string): string => {
      writeFileSync(join(dir, 'espresso.service'), text.replaceAll('/usr/bin/espresso', '/bin/true'));
      const r = spawnSync('systemd-analyze', ['verify', join(dir, 'espresso.service')], { encoding: 'utf8', timeout: 30_000 });
      return `${r.stdout}${r.stderr}`.trim();
    };
    expect(verify(unit)).toBe('');
    expect(verify(unit.replace('NoNewPrivileges=', 'NoNewPrivilegez='))).toContain("Unknown key 'NoNewPrivilegez'");
  });

  it('the example /etc/espresso/espresso.json loads as the server reads it: data in /var/lib/espresso, a seeded cluster', () => {
    const config = loadConfig({ configFile: join(packaging, 'systemd/espresso.json'), env: {}, flags: {} });
    expect(config.dataDir).toBe('/var/lib/espresso');
    expect(config.seeds.length).toBe(3);
    expect(config.seeds.some((s) => s.startsWith(`${config.nodeId}@${config.advertise}:${config.clusterPort}`))).toBe(true);
    expect([config.httpPort, config.clusterPort]).toEqual([config.port + 10000, config.port + 20000]);
    // Drain before stop talks to this node's cluster port.
    expect(one('ExecStop')).toContain(`127.0.0.1:${config.clusterPort}`);
    expect(one('ExecStop').split(' ').at(-1)).toBe('drain');
  });
});
