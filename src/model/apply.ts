// The metadata state machine's single entry point: one command in, one result out. A command
// that fails changes nothing (every check runs before the first mutation).

import { unreachable } from '../lib/assert.js';
import {
  addUser, addVhost, clearPermissions, clearTopicPermissions, deleteUser, deleteVhost,
  setPermissions, setTopicPermissions, setUserLimits, setVhostLimits,
} from './access.js';
import { bindExchange, bindQueue } from './binding-commands.js';
import { declareExchange, deleteExchange } from './exchanges.js';
import { clearPolicy, setPolicy } from './policies.js';
import {
  declareQueue, deleteExclusiveQueues, deleteNodeQueues, deleteQueue, purgeQueue, setQueueReplicas,
} from './queues.js';
import type { MetadataState } from './state.js';
import type { MetadataCommand, MetadataResult } from './types.js';

export function applyMetadata(state: MetadataState, command: MetadataCommand): MetadataResult {
  switch (command.kind) {
    case 'declareExchange': return declareExchange(state, command);
    case 'deleteExchange': return deleteExchange(state, command);
    case 'bindExchange': case 'unbindExchange': return bindExchange(state, command);
    case 'declareQueue': return declareQueue(state, command);
    case 'deleteQueue': return deleteQueue(state, command);
    case 'bindQueue': case 'unbindQueue': return bindQueue(state, command);
    case 'purgeQueue': return purgeQueue(state, command);
    case 'deleteExclusiveQueues': return deleteExclusiveQueues(state, command);
    case 'deleteNodeQueues': return deleteNodeQueues(state, command);
    case 'setQueueReplicas': return setQueueReplicas(state, command);
    case 'addUser': return addUser(state, command);
    case 'deleteUser': return deleteUser(state, command);
    case 'setPermissions': return setPermissions(state, command);
    case 'clearPermissions': return clearPermissions(state, command);
    case 'setTopicPermissions': return setTopicPermissions(state, command);
    case 'clearTopicPermissions': return clearTopicPermissions(state, command);
    case 'addVhost': return addVhost(state, command);
    case 'deleteVhost': return deleteVhost(state, command);
    case 'setVhostLimits': return setVhostLimits(state, command);
    case 'setUserLimits': return setUserLimits(state, command);
    case 'setPolicy': return setPolicy(state, command);
    case 'clearPolicy': return clearPolicy(state, command);
    default: return unreachable(command, 'unknown metadata command');
  }
}
