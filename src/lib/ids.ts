// Branded ids: numbers and strings that must not be mixed up with each other.

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type LogIndex = Brand<number, 'LogIndex'>;
export type Term = Brand<number, 'Term'>;
export type NodeId = Brand<string, 'NodeId'>;
export type GroupId = Brand<string, 'GroupId'>;
export type DeliveryTag = Brand<number, 'DeliveryTag'>;

export const logIndex = (n: number): LogIndex => n as LogIndex;
export const term = (n: number): Term => n as Term;
export const nodeId = (s: string): NodeId => s as NodeId;
export const groupId = (s: string): GroupId => s as GroupId;
export const deliveryTag = (n: number): DeliveryTag => n as DeliveryTag;
