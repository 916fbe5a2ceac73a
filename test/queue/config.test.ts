// Queue arguments as clients send them (plain or tagged values) become the machine's config.
import { describe, expect, it } from 'vitest';
import { defaultQueueConfig, queueConfigFromArguments } from '../../src/queue/index.js';

describe('queue arguments', () => {
  it('maps every supported argument, unwrapping tagged values', () => {
    const config = queueConfigFromArguments({
      'x-message-ttl': { type: 'I', value: 60_000 }, 'x-expires': 10n, 'x-max-length': 5, 'x-max-length-bytes': '1000',
      'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': Buffer.from('dlx'), 'x-max-priority': 255,
      'x-single-active-consumer': true, 'x-delivery-limit': 3, 'x-consumer-timeout': 900,
    }, false);
    expect(config).toEqual({
      messageTtlMs: 60_000, expiresMs: 10, maxLength: 5, maxLengthBytes: 1000, overflow: 'reject-publish-dlx',
      deadLetter: true, maxPriority: 31, singleActiveConsumer: true, deliveryLimit: 3, consumerTimeoutMs: 900,
    });
  });

  it('defaults the delivery limit to 20 for replicated queues only; -1 means unlimited', () => {
    expect(queueConfigFromArguments({}, true).deliveryLimit).toBe(20);
    expect(queueConfigFromArguments({}, false)).toEqual(defaultQueueConfig);
    expect(queueConfigFromArguments({ 'x-delivery-limit': -1 }, true).deliveryLimit).toBeNull();
  });
});
