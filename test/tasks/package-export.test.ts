// The SDK as a user's project gets it: `import { connectRpc } from 'espresso'` resolves through
// package.json "exports" to the built dist/ (npm test builds it first), and type-checks with the
// declarations it ships.

import { afterAll, describe, expect, it } from 'vitest';
import { consumerProject } from '../cli/consumer-project.js';

const project = consumerProject('espresso-consumer-');
afterAll(() => project.remove());

describe('the package exports the Task-RPC SDK', () => {
  it('resolves `espresso` to the SDK at run time', async () => {
    const stdout = await project.runScript('check.mjs', [
      "import { connectRpc, RpcRemoteError, requestQueueName } from 'espresso';",
      "console.log(typeof connectRpc, new RpcRemoteError('E', 'm', 1).code, requestQueueName('x'));",
    ]);
    expect(stdout.trim()).toBe('function REMOTE rpc.x');
  });

  it('type-checks a caller and a server against the shipped declarations', async () => {
    const out = await project.typeCheck('use.ts', [
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
    ]);
    expect(out).toBe('');
  });
});
