// AMQP 0-9-1 method types and argument layouts, written out from the RabbitMQ spec data
// (../shared/amqp-spec/amqp-rabbitmq-0.9.1.json) by a one-off script; data only.

import type { FieldTable } from './field-table.js';

export type ArgType = 'bit' | 'octet' | 'short' | 'long' | 'longlong' | 'shortstr' | 'longstr' | 'table' | 'timestamp';

export interface MethodSpec {
  readonly name: AmqpMethod['name'];
  readonly classId: number;
  readonly methodId: number;
  readonly args: ReadonlyArray<readonly [string, ArgType]>;
}

export interface BasicQos {
  readonly name: 'basic.qos';
  readonly prefetchSize: number;
  readonly prefetchCount: number;
  readonly global: boolean;
}

export interface BasicQosOk {
  readonly name: 'basic.qos-ok';
}

export interface BasicConsume {
  readonly name: 'basic.consume';
  readonly ticket: number;
  readonly queue: string;
  readonly consumerTag: string;
  readonly noLocal: boolean;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  readonly nowait: boolean;
  readonly arguments: FieldTable;
}

export interface BasicConsumeOk {
  readonly name: 'basic.consume-ok';
  readonly consumerTag: string;
}

export interface BasicCancel {
  readonly name: 'basic.cancel';
  readonly consumerTag: string;
  readonly nowait: boolean;
}

export interface BasicCancelOk {
  readonly name: 'basic.cancel-ok';
  readonly consumerTag: string;
}

export interface BasicPublish {
  readonly name: 'basic.publish';
  readonly ticket: number;
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: boolean;
  readonly immediate: boolean;
}

export interface BasicReturn {
  readonly name: 'basic.return';
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
}

export interface BasicDeliver {
  readonly name: 'basic.deliver';
  readonly consumerTag: string;
  readonly deliveryTag: number;
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
}

export interface BasicGet {
  readonly name: 'basic.get';
  readonly ticket: number;
  readonly queue: string;
  readonly noAck: boolean;
}

export interface BasicGetOk {
  readonly name: 'basic.get-ok';
  readonly deliveryTag: number;
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  readonly messageCount: number;
}

export interface BasicGetEmpty {
  readonly name: 'basic.get-empty';
  readonly clusterId: string;
}

export interface BasicAck {
  readonly name: 'basic.ack';
  readonly deliveryTag: number;
  readonly multiple: boolean;
}

export interface BasicReject {
  readonly name: 'basic.reject';
  readonly deliveryTag: number;
  readonly requeue: boolean;
}

export interface BasicRecoverAsync {
  readonly name: 'basic.recover-async';
  readonly requeue: boolean;
}

export interface BasicRecover {
  readonly name: 'basic.recover';
  readonly requeue: boolean;
}

export interface BasicRecoverOk {
  readonly name: 'basic.recover-ok';
}

export interface BasicNack {
  readonly name: 'basic.nack';
  readonly deliveryTag: number;
  readonly multiple: boolean;
  readonly requeue: boolean;
}

export interface ConnectionStart {
  readonly name: 'connection.start';
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly serverProperties: FieldTable;
  readonly mechanisms: Buffer;
  readonly locales: Buffer;
}

export interface ConnectionStartOk {
  readonly name: 'connection.start-ok';
  readonly clientProperties: FieldTable;
  readonly mechanism: string;
  readonly response: Buffer;
  readonly locale: string;
}

export interface ConnectionSecure {
  readonly name: 'connection.secure';
  readonly challenge: Buffer;
}

export interface ConnectionSecureOk {
  readonly name: 'connection.secure-ok';
  readonly response: Buffer;
}

export interface ConnectionTune {
  readonly name: 'connection.tune';
  readonly channelMax: number;
  readonly frameMax: number;
  readonly heartbeat: number;
}

export interface ConnectionTuneOk {
  readonly name: 'connection.tune-ok';
  readonly channelMax: number;
  readonly frameMax: number;
  readonly heartbeat: number;
}

export interface ConnectionOpen {
  readonly name: 'connection.open';
  readonly virtualHost: string;
  readonly capabilities: string;
  readonly insist: boolean;
}

export interface ConnectionOpenOk {
  readonly name: 'connection.open-ok';
  readonly knownHosts: string;
}

export interface ConnectionClose {
  readonly name: 'connection.close';
  readonly replyCode: number;
  readonly replyText: string;
  readonly classId: number;
  readonly methodId: number;
}

export interface ConnectionCloseOk {
  readonly name: 'connection.close-ok';
}

export interface ConnectionBlocked {
  readonly name: 'connection.blocked';
  readonly reason: string;
}

export interface ConnectionUnblocked {
  readonly name: 'connection.unblocked';
}

export interface ConnectionUpdateSecret {
  readonly name: 'connection.update-secret';
  readonly newSecret: Buffer;
  readonly reason: string;
}

export interface ConnectionUpdateSecretOk {
  readonly name: 'connection.update-secret-ok';
}

export interface ChannelOpen {
  readonly name: 'channel.open';
  readonly outOfBand: string;
}

export interface ChannelOpenOk {
  readonly name: 'channel.open-ok';
  readonly channelId: Buffer;
}

export interface ChannelFlow {
  readonly name: 'channel.flow';
  readonly active: boolean;
}

export interface ChannelFlowOk {
  readonly name: 'channel.flow-ok';
  readonly active: boolean;
}

export interface ChannelClose {
  readonly name: 'channel.close';
  readonly replyCode: number;
  readonly replyText: string;
  readonly classId: number;
  readonly methodId: number;
}

export interface ChannelCloseOk {
  readonly name: 'channel.close-ok';
}

export interface AccessRequest {
  readonly name: 'access.request';
  readonly realm: string;
  readonly exclusive: boolean;
  readonly passive: boolean;
  readonly active: boolean;
  readonly write: boolean;
  readonly read: boolean;
}

export interface AccessRequestOk {
  readonly name: 'access.request-ok';
  readonly ticket: number;
}

export interface ExchangeDeclare {
  readonly name: 'exchange.declare';
  readonly ticket: number;
  readonly exchange: string;
  readonly type: string;
  readonly passive: boolean;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly nowait: boolean;
  readonly arguments: FieldTable;
}

export interface ExchangeDeclareOk {
  readonly name: 'exchange.declare-ok';
}

export interface ExchangeDelete {
  readonly name: 'exchange.delete';
  readonly ticket: number;
  readonly exchange: string;
  readonly ifUnused: boolean;
  readonly nowait: boolean;
}

export interface ExchangeDeleteOk {
  readonly name: 'exchange.delete-ok';
}

export interface ExchangeBind {
  readonly name: 'exchange.bind';
  readonly ticket: number;
  readonly destination: string;
  readonly source: string;
  readonly routingKey: string;
  readonly nowait: boolean;
  readonly arguments: FieldTable;
}

export interface ExchangeBindOk {
  readonly name: 'exchange.bind-ok';
}

export interface ExchangeUnbind {
  readonly name: 'exchange.unbind';
  readonly ticket: number;
  readonly destination: string;
  readonly source: string;
  readonly routingKey: string;
  readonly nowait: boolean;
  readonly arguments: FieldTable;
}

export interface ExchangeUnbindOk {
  readonly name: 'exchange.unbind-ok';
}

export interface QueueDeclare {
  readonly name: 'queue.declare';
  readonly ticket: number;
  readonly queue: string;
  readonly passive: boolean;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly nowait: boolean;
  readonly arguments: FieldTable;
}

export interface QueueDeclareOk {
  readonly name: 'queue.declare-ok';
  readonly queue: string;
  readonly messageCount: number;
  readonly consumerCount: number;
}

export interface QueueBind {
  readonly name: 'queue.bind';
  readonly ticket: number;
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly nowait: boolean;
  readonly arguments: FieldTable;
}

export interface QueueBindOk {
  readonly name: 'queue.bind-ok';
}

export interface QueuePurge {
  readonly name: 'queue.purge';
  readonly ticket: number;
  readonly queue: string;
  readonly nowait: boolean;
}

export interface QueuePurgeOk {
  readonly name: 'queue.purge-ok';
  readonly messageCount: number;
}

export interface QueueDelete {
  readonly name: 'queue.delete';
  readonly ticket: number;
  readonly queue: string;
  readonly ifUnused: boolean;
  readonly ifEmpty: boolean;
  readonly nowait: boolean;
}

export interface QueueDeleteOk {
  readonly name: 'queue.delete-ok';
  readonly messageCount: number;
}

export interface QueueUnbind {
  readonly name: 'queue.unbind';
  readonly ticket: number;
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly arguments: FieldTable;
}

export interface QueueUnbindOk {
  readonly name: 'queue.unbind-ok';
}

export interface TxSelect {
  readonly name: 'tx.select';
}

export interface TxSelectOk {
  readonly name: 'tx.select-ok';
}

export interface TxCommit {
  readonly name: 'tx.commit';
}

export interface TxCommitOk {
  readonly name: 'tx.commit-ok';
}

export interface TxRollback {
  readonly name: 'tx.rollback';
}

export interface TxRollbackOk {
  readonly name: 'tx.rollback-ok';
}

export interface ConfirmSelect {
  readonly name: 'confirm.select';
  readonly nowait: boolean;
}

export interface ConfirmSelectOk {
  readonly name: 'confirm.select-ok';
}

export type AmqpMethod =
  | BasicQos
  | BasicQosOk
  | BasicConsume
  | BasicConsumeOk
  | BasicCancel
  | BasicCancelOk
  | BasicPublish
  | BasicReturn
  | BasicDeliver
  | BasicGet
  | BasicGetOk
  | BasicGetEmpty
  | BasicAck
  | BasicReject
  | BasicRecoverAsync
  | BasicRecover
  | BasicRecoverOk
  | BasicNack
  | ConnectionStart
  | ConnectionStartOk
  | ConnectionSecure
  | ConnectionSecureOk
  | ConnectionTune
  | ConnectionTuneOk
  | ConnectionOpen
  | ConnectionOpenOk
  | ConnectionClose
  | ConnectionCloseOk
  | ConnectionBlocked
  | ConnectionUnblocked
  | ConnectionUpdateSecret
  | ConnectionUpdateSecretOk
  | ChannelOpen
  | ChannelOpenOk
  | ChannelFlow
  | ChannelFlowOk
  | ChannelClose
  | ChannelCloseOk
  | AccessRequest
  | AccessRequestOk
  | ExchangeDeclare
  | ExchangeDeclareOk
  | ExchangeDelete
  | ExchangeDeleteOk
  | ExchangeBind
  | ExchangeBindOk
  | ExchangeUnbind
  | ExchangeUnbindOk
  | QueueDeclare
  | QueueDeclareOk
  | QueueBind
  | QueueBindOk
  | QueuePurge
  | QueuePurgeOk
  | QueueDelete
  | QueueDeleteOk
  | QueueUnbind
  | QueueUnbindOk
  | TxSelect
  | TxSelectOk
  | TxCommit
  | TxCommitOk
  | TxRollback
  | TxRollbackOk
  | ConfirmSelect
  | ConfirmSelectOk;

export type MethodName = AmqpMethod['name'];

export type MethodOf<N extends MethodName> = Extract<AmqpMethod, { name: N }>;

export const methodSpecs: readonly MethodSpec[] = [
  { name: 'basic.qos', classId: 60, methodId: 10, args: [['prefetchSize', 'long'], ['prefetchCount', 'short'], ['global', 'bit']] },
  { name: 'basic.qos-ok', classId: 60, methodId: 11, args: [] },
  { name: 'basic.consume', classId: 60, methodId: 20, args: [['ticket', 'short'], ['queue', 'shortstr'], ['consumerTag', 'shortstr'], ['noLocal', 'bit'], ['noAck', 'bit'], ['exclusive', 'bit'], ['nowait', 'bit'], ['arguments', 'table']] },
  { name: 'basic.consume-ok', classId: 60, methodId: 21, args: [['consumerTag', 'shortstr']] },
  { name: 'basic.cancel', classId: 60, methodId: 30, args: [['consumerTag', 'shortstr'], ['nowait', 'bit']] },
  { name: 'basic.cancel-ok', classId: 60, methodId: 31, args: [['consumerTag', 'shortstr']] },
  { name: 'basic.publish', classId: 60, methodId: 40, args: [['ticket', 'short'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['mandatory', 'bit'], ['immediate', 'bit']] },
  { name: 'basic.return', classId: 60, methodId: 50, args: [['replyCode', 'short'], ['replyText', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr']] },
  { name: 'basic.deliver', classId: 60, methodId: 60, args: [['consumerTag', 'shortstr'], ['deliveryTag', 'longlong'], ['redelivered', 'bit'], ['exchange', 'shortstr'], ['routingKey', 'shortstr']] },
  { name: 'basic.get', classId: 60, methodId: 70, args: [['ticket', 'short'], ['queue', 'shortstr'], ['noAck', 'bit']] },
  { name: 'basic.get-ok', classId: 60, methodId: 71, args: [['deliveryTag', 'longlong'], ['redelivered', 'bit'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['messageCount', 'long']] },
  { name: 'basic.get-empty', classId: 60, methodId: 72, args: [['clusterId', 'shortstr']] },
  { name: 'basic.ack', classId: 60, methodId: 80, args: [['deliveryTag', 'longlong'], ['multiple', 'bit']] },
  { name: 'basic.reject', classId: 60, methodId: 90, args: [['deliveryTag', 'longlong'], ['requeue', 'bit']] },
  { name: 'basic.recover-async', classId: 60, methodId: 100, args: [['requeue', 'bit']] },
  { name: 'basic.recover', classId: 60, methodId: 110, args: [['requeue', 'bit']] },
  { name: 'basic.recover-ok', classId: 60, methodId: 111, args: [] },
  { name: 'basic.nack', classId: 60, methodId: 120, args: [['deliveryTag', 'longlong'], ['multiple', 'bit'], ['requeue', 'bit']] },
  { name: 'connection.start', classId: 10, methodId: 10, args: [['versionMajor', 'octet'], ['versionMinor', 'octet'], ['serverProperties', 'table'], ['mechanisms', 'longstr'], ['locales', 'longstr']] },
  { name: 'connection.start-ok', classId: 10, methodId: 11, args: [['clientProperties', 'table'], ['mechanism', 'shortstr'], ['response', 'longstr'], ['locale', 'shortstr']] },
  { name: 'connection.secure', classId: 10, methodId: 20, args: [['challenge', 'longstr']] },
  { name: 'connection.secure-ok', classId: 10, methodId: 21, args: [['response', 'longstr']] },
  { name: 'connection.tune', classId: 10, methodId: 30, args: [['channelMax', 'short'], ['frameMax', 'long'], ['heartbeat', 'short']] },
  { name: 'connection.tune-ok', classId: 10, methodId: 31, args: [['channelMax', 'short'], ['frameMax', 'long'], ['heartbeat', 'short']] },
  { name: 'connection.open', classId: 10, methodId: 40, args: [['virtualHost', 'shortstr'], ['capabilities', 'shortstr'], ['insist', 'bit']] },
  { name: 'connection.open-ok', classId: 10, methodId: 41, args: [['knownHosts', 'shortstr']] },
  { name: 'connection.close', classId: 10, methodId: 50, args: [['replyCode', 'short'], ['replyText', 'shortstr'], ['classId', 'short'], ['methodId', 'short']] },
  { name: 'connection.close-ok', classId: 10, methodId: 51, args: [] },
  { name: 'connection.blocked', classId: 10, methodId: 60, args: [['reason', 'shortstr']] },
  { name: 'connection.unblocked', classId: 10, methodId: 61, args: [] },
  { name: 'connection.update-secret', classId: 10, methodId: 70, args: [['newSecret', 'longstr'], ['reason', 'shortstr']] },
  { name: 'connection.update-secret-ok', classId: 10, methodId: 71, args: [] },
  { name: 'channel.open', classId: 20, methodId: 10, args: [['outOfBand', 'shortstr']] },
  { name: 'channel.open-ok', classId: 20, methodId: 11, args: [['channelId', 'longstr']] },
  { name: 'channel.flow', classId: 20, methodId: 20, args: [['active', 'bit']] },
  { name: 'channel.flow-ok', classId: 20, methodId: 21, args: [['active', 'bit']] },
  { name: 'channel.close', classId: 20, methodId: 40, args: [['replyCode', 'short'], ['replyText', 'shortstr'], ['classId', 'short'], ['methodId', 'short']] },
  { name: 'channel.close-ok', classId: 20, methodId: 41, args: [] },
  { name: 'access.request', classId: 30, methodId: 10, args: [['realm', 'shortstr'], ['exclusive', 'bit'], ['passive', 'bit'], ['active', 'bit'], ['write', 'bit'], ['read', 'bit']] },
  { name: 'access.request-ok', classId: 30, methodId: 11, args: [['ticket', 'short']] },
  { name: 'exchange.declare', classId: 40, methodId: 10, args: [['ticket', 'short'], ['exchange', 'shortstr'], ['type', 'shortstr'], ['passive', 'bit'], ['durable', 'bit'], ['autoDelete', 'bit'], ['internal', 'bit'], ['nowait', 'bit'], ['arguments', 'table']] },
  { name: 'exchange.declare-ok', classId: 40, methodId: 11, args: [] },
  { name: 'exchange.delete', classId: 40, methodId: 20, args: [['ticket', 'short'], ['exchange', 'shortstr'], ['ifUnused', 'bit'], ['nowait', 'bit']] },
  { name: 'exchange.delete-ok', classId: 40, methodId: 21, args: [] },
  { name: 'exchange.bind', classId: 40, methodId: 30, args: [['ticket', 'short'], ['destination', 'shortstr'], ['source', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']] },
  { name: 'exchange.bind-ok', classId: 40, methodId: 31, args: [] },
  { name: 'exchange.unbind', classId: 40, methodId: 40, args: [['ticket', 'short'], ['destination', 'shortstr'], ['source', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']] },
  { name: 'exchange.unbind-ok', classId: 40, methodId: 51, args: [] },
  { name: 'queue.declare', classId: 50, methodId: 10, args: [['ticket', 'short'], ['queue', 'shortstr'], ['passive', 'bit'], ['durable', 'bit'], ['exclusive', 'bit'], ['autoDelete', 'bit'], ['nowait', 'bit'], ['arguments', 'table']] },
  { name: 'queue.declare-ok', classId: 50, methodId: 11, args: [['queue', 'shortstr'], ['messageCount', 'long'], ['consumerCount', 'long']] },
  { name: 'queue.bind', classId: 50, methodId: 20, args: [['ticket', 'short'], ['queue', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']] },
  { name: 'queue.bind-ok', classId: 50, methodId: 21, args: [] },
  { name: 'queue.purge', classId: 50, methodId: 30, args: [['ticket', 'short'], ['queue', 'shortstr'], ['nowait', 'bit']] },
  { name: 'queue.purge-ok', classId: 50, methodId: 31, args: [['messageCount', 'long']] },
  { name: 'queue.delete', classId: 50, methodId: 40, args: [['ticket', 'short'], ['queue', 'shortstr'], ['ifUnused', 'bit'], ['ifEmpty', 'bit'], ['nowait', 'bit']] },
  { name: 'queue.delete-ok', classId: 50, methodId: 41, args: [['messageCount', 'long']] },
  { name: 'queue.unbind', classId: 50, methodId: 50, args: [['ticket', 'short'], ['queue', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['arguments', 'table']] },
  { name: 'queue.unbind-ok', classId: 50, methodId: 51, args: [] },
  { name: 'tx.select', classId: 90, methodId: 10, args: [] },
  { name: 'tx.select-ok', classId: 90, methodId: 11, args: [] },
  { name: 'tx.commit', classId: 90, methodId: 20, args: [] },
  { name: 'tx.commit-ok', classId: 90, methodId: 21, args: [] },
  { name: 'tx.rollback', classId: 90, methodId: 30, args: [] },
  { name: 'tx.rollback-ok', classId: 90, methodId: 31, args: [] },
  { name: 'confirm.select', classId: 85, methodId: 10, args: [['nowait', 'bit']] },
  { name: 'confirm.select-ok', classId: 85, methodId: 11, args: [] },
];
