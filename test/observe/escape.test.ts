// Queue and vhost names are user input: written into /metrics/per-object they are escaped as
// Prometheus' text format asks (backslash, double quote, newline), so a scraper reads them back.
import { describe, expect, it } from 'vitest';
import { escapeLabel } from '../../src/observe/queue-metrics.js';
import { parseMetrics } from './scrape.js';

describe('label escaping', () => {
  it('escapes what the text format needs and reads back to the name given', () => {
    const name = 'odd "queue" \\ with\na newline';
    expect(escapeLabel(name)).toBe('odd \\"queue\\" \\\\ with\\na newline');
    expect(escapeLabel('plain.name-1')).toBe('plain.name-1');
    const [s] = parseMetrics(`espresso_queue_messages_ready{vhost="/",queue="${escapeLabel('a"b\\c')}"} 3\n`);
    expect(s).toEqual({ name: 'espresso_queue_messages_ready', labels: { vhost: '/', queue: 'a"b\\c' }, value: 3 });
  });
});
