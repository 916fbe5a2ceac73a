// Which exchange-type plugin differs between two nodes: the words of a refused join (and of the
// error a node of a --seeds cluster logs about a member).

import { describe, expect, it } from 'vitest';
import { exchangePluginDifference } from '../../src/cluster/metadata-group.js';

describe('exchange-type plugin sets', () => {
  it('the same set in any order is no difference', () => {
    expect(exchangePluginDifference(['a@1', 'b@2'], ['b@2', 'a@1'])).toBeNull();
    expect(exchangePluginDifference([], [])).toBeNull();
  });

  it('names a missing plugin, an extra one, and one of another version', () => {
    expect(exchangePluginDifference(['a@1', 'b@2'], ['a@1'])).toBe("plugin 'b@2' is loaded in the cluster but not on the joining node");
    expect(exchangePluginDifference(['a@1'], ['a@1', 'c@1'])).toBe("plugin 'c@1' is loaded on the joining node but not in the cluster");
    expect(exchangePluginDifference(['a@1'], ['a@2'], 'this node', 'n2')).toBe("plugin 'a' differs: this node loads a@1, n2 a@2");
  });
});
