/**
 * The ring schedule shared by the sender (RingReducer) and the receiver's checks (CollectiveInbox):
 * which segment moves in which phase. Rank r sends to (r + 1) % world and receives from
 * (r − 1 + world) % world; both sides derive the same answer from (rank, world, phase) alone, so a
 * chunk's `segment` can be checked on arrival.
 */

/** The rank a rank receives from. */
export function predecessorOf(rank: number, world: number): number {
  return (rank - 1 + world) % world;
}

/** The rank a rank sends to. */
export function successorOf(rank: number, world: number): number {
  return (rank + 1) % world;
}

/** Phases of ALLREDUCE_SUM: world − 1 of reduce-scatter, then world − 1 of all-gather. */
export function allReducePhases(world: number): number {
  return 2 * (world - 1);
}

/** Phases of ALLGATHER: every block travels world − 1 hops. */
export function allGatherPhases(world: number): number {
  return world - 1;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/**
 * The segment a rank receives in ALLREDUCE_SUM phase `phase`. Reduce-scatter phase k brings segment
 * r − 1 − k (so after world − 1 phases rank r holds the full sum of segment r + 1); all-gather phase
 * j brings segment r − j. What a rank receives in phase p it sends on in phase p + 1, so the segment
 * sent in phase p is the one received in phase p − 1 (phase 0 sends the rank's own segment r).
 */
export function allReduceSegment(rank: number, world: number, phase: number): number {
  return phase < world - 1 ? mod(rank - 1 - phase, world) : mod(rank - (phase - (world - 1)), world);
}

/** The origin rank of the block a rank receives in ALLGATHER phase `phase` (phase 0 sends its own). */
export function allGatherOrigin(rank: number, world: number, phase: number): number {
  return mod(rank - 1 - phase, world);
}

/**
 * Element range [start, end) of segment `segment` when `length` elements are split into `world`
 * near-equal contiguous segments (sizes differ by at most one; a segment is empty when
 * length < world).
 */
export function segmentRange(length: number, world: number, segment: number): { start: number; end: number } {
  return { start: Math.floor((segment * length) / world), end: Math.floor(((segment + 1) * length) / world) };
}
