// Headers the broker adds to a message as it leaves a queue: x-delivery-count on redeliveries,
// as RabbitMQ 4 quorum queues do (absent on the first delivery, a long from the first retry on).

import type { StoredMessage } from './queue-backend.js';

/**
 * The message as it should be delivered after `deliveryCount` failed deliveries. The first
 * delivery is the stored object itself (its received property bytes are relayed as they are);
 * a redelivery gets a copy with the header set, whose properties are re-encoded.
 */
export function withDeliveryCount(message: StoredMessage, deliveryCount: number): StoredMessage {
  if (deliveryCount <= 0) return message;
  const headers = { ...(message.properties.headers ?? {}), 'x-delivery-count': { tag: 'l', value: deliveryCount } };
  return { ...message, properties: { ...message.properties, headers }, rawProperties: undefined };
}
