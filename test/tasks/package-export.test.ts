// The SDK as a user's project gets it: `import { connectRpc } from 'espresso'` resolves through
// package.json "exports" to the built dist/ (npm test builds it first), and type-checks with the
// declarations it ships.

import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'espresso-consumer-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the package exports the Task-RPC SDK', () => {
  // A project that installed espresso: its node_modules/espresso is this repository.
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'espresso'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));

  it('resolves `espresso` to the SDK at run time', async () => {
    writeFileSync(join(dir, 'check.mjs'), [
      "import { connectRpc, RpcRemoteError, requestQueueName } from 'espresso';",
      "console.log(typeof connectRpc, new RpcRemoteError('E', 'm', 1).code, requestQueueName('x'));",
    ].join('\n'));
    const { stdout } = await run(process.execPath, ['check.mjs'], { cwd: dir });
    expect(stdout.trim()).toBe('function REMOTE rpc.x');
  });

  it('type-checks a caller and a server against the shipped declarations', async () => {
    // A Node project has @types/node (amqplib's declarations, which the SDK's name, need it).
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true,
        typeRoots: [join(root, 'node_modules', '@types')], types: ['node'],
      },
      files: ['use.ts'],
    }));
    writeFileSync(join(dir, 'use.ts'), [
      "import { connectRpc, RpcRemoteError, type CallContext } from 'espresso';",
      'export async function main(): Promise<number> {',
      "  const rpc = await connectRpc(['amqp://guest:guest@127.0.0.1:5672'], { name: 'typed' });",
      "  await rpc.serve('add', (p: unknown, ctx: CallContext) => (p as number) + (ctx.deadlineMs ?? 0), { concurrency: 4 });",
      "  try { return await rpc.call<number>('add', 1, { timeoutMs: 1000, idempotent: true }); }",
      '  catch (e) { if (e instanceof RpcRemoteError) return e.details as number; throw e; }',
      '  finally { await rpc.close(); }',
      '}',
      "// @ts-expect-error: the timeout is a number",
      "export const bad = (async () => (await connectRpc('amqp://x')).call('m', 1, { timeoutMs: 'soon' }))();",
    ].join('\n'));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const out = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir }).then(() => '', (e: { stdout?: string }) => e.stdout ?? String(e));
    expect(out).toBe('');
  });
});
