// The package's public surface (package.json "exports"): the Task-RPC SDK for callers and servers,
// and the durable-task SDK for workers and submitters.
//
// Durable tasks (task-worker.ts)
// - connectTasks(urls, { name?, onEvent?, reportTimeoutMs? }): Promise<Tasks>
// - tasks.work(type, async (task, ctx) => { const a = await ctx.step('fetch', fn); ... }, { concurrency?, define? })
// - tasks.define(type, { schema?, maxAttempts?, retentionMs?, leaseMs? }), tasks.submit(type, input, { id? }), tasks.get(type, id)
//
// RPC API
// - connectRpc(urls, { name?, onEvent?, limits? }): Promise<Rpc>
// - rpc.call(method, payload?, { timeoutMs?, idempotent? }): Promise<result>   (errors: RpcError subclasses)
// - rpc.serve(method, (payload, ctx) => result, { concurrency? }): Promise<RpcServing>
// - rpc.stats(), rpc.connectedUrl(), rpc.close()
// The wire format (queues, headers, properties) is in rpc-wire.ts and the README, for other languages.

export { connectRpc, Rpc, type RpcOptions, type RpcServing, type RpcStats } from './rpc.js';
export type { CallOptions, CallerStats } from './rpc-caller.js';
export type { CallContext, Handler, ServeOptions, ServerStats } from './rpc-server.js';
export type { RpcEvent } from './rpc-connection.js';
export type { RpcLimits } from './limits.js';
export { defaultRpcLimits } from './limits.js';
export {
  RpcError, RpcRemoteError, RpcTimeoutError, RpcNoServerError, RpcServerLostError, RpcConnectionLostError,
  RpcRefusedError, RpcClosedError, RpcTooManyCallsError, RpcConnectError, type RpcErrorCode,
} from './rpc-errors.js';
export { contentType, directReplyTo, header, requestQueueArguments, requestQueueName, reservedErrorName } from './rpc-wire.js';
export {
  connectTasks, Tasks, TaskLostError, TaskRefusedError,
  type TaskContext, type TaskHandler, type TaskView, type TaskStepView, type TasksOptions, type WorkOptions, type Working,
} from './task-worker.js';
