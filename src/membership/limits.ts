// Timing and bounds of SWIM membership. Defaults suit a LAN (loopback tests included): a dead
// node is noticed within about probeIntervalMs * members + suspicionTimeoutMs.

export interface SwimConfig {
  /** One probe of one member starts every period. */
  probeIntervalMs: number;
  /** No direct ack by then: ask `indirectProbes` others to probe the target for us. */
  probeTimeoutMs: number;
  indirectProbes: number;
  /** A suspect that does not refute within this time is declared dead. */
  suspicionTimeoutMs: number;
  /** Each update is piggybacked retransmitMult * ceil(log2(members + 1)) times, then dropped. */
  retransmitMult: number;
  /** Updates piggybacked on one message; the rest wait for later messages. */
  updatesPerMessageMax: number;
  /** Members tracked; updates about new members beyond it are ignored (documented bound). */
  membersMax: number;
  /** Pings relayed for others (ping-req) awaiting an ack; the oldest is forgotten at the bound. */
  relaysMax: number;
  /** Every this many probe periods, also ping one dead member, so split views heal. */
  deadProbeEveryPeriods: number;
  /** Every this many probe periods, exchange full state with one random live member. */
  syncEveryPeriods: number;
}

export const defaultSwimConfig: SwimConfig = {
  probeIntervalMs: 500,
  probeTimeoutMs: 200,
  indirectProbes: 3,
  suspicionTimeoutMs: 2_000,
  retransmitMult: 3,
  updatesPerMessageMax: 16,
  membersMax: 1_024,
  relaysMax: 1_024,
  deadProbeEveryPeriods: 4,
  syncEveryPeriods: 10,
};
