// Limits of the replicated queue edge (units last); the behaviour at each bound is documented here.

/** Calls made before this node leads the group wait in memory; past this many they fail Overloaded. */
export const waitingCallsMax = 100_000;

/**
 * A snapshot is taken after this many applied entries (plus messages settled since the last one),
 * or after twice the live messages if more: the snapshot holds every live message's state (~40
 * bytes of JSON each; bodies stay in the log), so its cost stays proportional to what it frees.
 */
export const snapshotEveryEntriesMin = 4096;

/**
 * Bodies of the replicated queues of one node kept in memory, together (a shared budget). Past it
 * the oldest resident bodies are dropped and read back from their enqueue entry in the WAL when
 * needed; bodies that exist only in memory (from a snapshot whose log is gone) never count and
 * never go.
 */
export const bodyBudgetBytesDefault = 64 * 1024 * 1024;

/** What one resident body costs beyond its body and property bytes (objects, map slot, queue slot). */
export const bodyOverheadBytes = 256;

/** Stale slots (bodies deleted before eviction reached them) the budget's FIFO tolerates before it is compacted. */
export const bodyFifoSlackSlots = 4096;
