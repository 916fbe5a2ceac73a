// A small gossip node for the real-process tests: transport + gossip service on 127.0.0.1.
// Prints one JSON line per membership change on stdout ({"view": [...]}); log lines go to stderr.
// Usage: node --import tsx gossip-node.ts <id> <port> <secret> [peerId=host:port ...]
import { nodeId } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import { GossipService } from '../../src/membership/index.js';
import { Transport } from '../../src/transport/index.js';

const [id, portText, secret, ...peerArgs] = process.argv.slice(2);
if (id === undefined || portText === undefined || secret === undefined) {
  process.stderr.write('usage: gossip-node <id> <port> <secret> [peer=host:port ...]\n');
  process.exit(2);
}
const logger = createLogger({
  sink: (line) => process.stderr.write(line), clock: { nowMs: () => Date.now() }, level: 'info', component: 'gossip-node', base: { node: id },
});
const transport = await Transport.start({
  nodeId: nodeId(id), listen: { host: '127.0.0.1', port: Number(portText) }, secret, logger: logger.child('transport'),
  limits: { reconnectDelayMsMin: 50, reconnectDelayMsMax: 1_000, keepaliveMs: 2_000, keepaliveTimeoutMs: 2_000 },
});
const seeds = peerArgs.map((a) => {
  const [peer, address] = a.split('=');
  return { nodeId: nodeId(peer!), clusterAddress: address! };
});
const gossip = new GossipService({
  transport, seeds, logger: logger.child('gossip'),
  meta: { amqpAddress: '127.0.0.1:0', clusterAddress: `127.0.0.1:${transport.port}`, load: 0, version: '0.1.0', leaders: {} },
  config: { probeIntervalMs: 300, probeTimeoutMs: 150, suspicionTimeoutMs: 1_500 },
});
const print = (): void => {
  const view = gossip.members().map((m) => ({ id: m.nodeId, status: m.status, incarnation: m.incarnation }));
  process.stdout.write(JSON.stringify({ atMs: Date.now(), view }) + '\n');
};
gossip.onChange(print);
print();
const stop = (): void => {
  gossip.stop();
  void transport.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
