// The broker's narrow door to metadata: apply a command (async: the server commits it through the
// replicated metadata group, cluster/metadata-group.ts) and read the applied state (sync: every node
// routes locally). The in-memory client here serves broker tests that run without a group host.

import { applyMetadata, type MetadataCommand, type MetadataResult, type MetadataState } from '../model/index.js';

export interface MetadataClient {
  apply(command: MetadataCommand): Promise<MetadataResult>;
  /**
   * Read barrier for not-found paths: resolves once this node applied what the cluster had
   * committed when asked, so a name another node just confirmed is visible here.
   */
  sync(): Promise<void>;
  /** The applied state, for routing and lookups with the model's query functions. */
  readonly state: MetadataState;
}

/** A single node: commands apply directly to the in-memory state. */
export class LocalMetadataClient implements MetadataClient {
  constructor(readonly state: MetadataState) {}

  apply(command: MetadataCommand): Promise<MetadataResult> {
    return Promise.resolve(applyMetadata(this.state, command));
  }

  /** One node: everything committed is applied already. */
  sync(): Promise<void> {
    return Promise.resolve();
  }
}
