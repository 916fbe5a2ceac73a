// Bounds of the metadata model. At a bound a command fails with 406 PRECONDITION_FAILED naming
// the limit; nothing is half-applied.

export const limits = {
  vhostsMax: 1_000,
  usersMax: 10_000,
  exchangesPerVhostMax: 100_000,
  queuesPerVhostMax: 1_000_000,
  /** Bindings whose source is one exchange. */
  bindingsPerExchangeMax: 100_000,
  policiesPerVhostMax: 1_000,
  /** AMQP short strings: names and routing keys. */
  nameBytesMax: 255,
  /** Words in a topic binding key (a 255-byte key of dots holds 256 empty words). */
  topicWordsMax: 256,
  /** RabbitMQ 4.x refuses binding keys with more '#' than this. */
  topicHashesMax: 2,
  /** x-max-priority upper bound (RabbitMQ's MAX_SUPPORTED_PRIORITY). */
  maxPriorityMax: 255,
  /** Largest TTL / expiry RabbitMQ accepts (its MAX_EXPIRY_TIMER, ms). */
  expiryMsMax: 4_294_967_295,
  /** Compiled permission/policy regexes kept; beyond it the cache is cleared and rebuilt. */
  regexCacheEntriesMax: 10_000,
  /** Exchanges visited while routing one message (exchange-to-exchange chains); exchanges past
   *  it are not visited, so the message reaches only the queues found so far. */
  routeExchangesVisitedMax: 10_000,
} as const;
