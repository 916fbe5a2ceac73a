// Limits of the replicated queue edge (units last); the behaviour at each bound is documented here.

/** Calls made before this node leads the group wait in memory; past this many they fail Overloaded. */
export const waitingCallsMax = 100_000;

/**
 * A snapshot is taken after this many applied entries, or after twice the live messages if more
 * (the snapshot holds every live body, so its cost stays proportional to the entries it replaces).
 */
export const snapshotEveryEntriesMin = 4096;

/** Consumer tags and owner ids are AMQP short strings; anything longer is a bug in the caller. */
export const shortStringBytesMax = 65_535;
