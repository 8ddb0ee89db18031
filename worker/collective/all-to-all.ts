import { concatArrays } from '../../common/concat-arrays.js';
import type { SparseRowGrad } from '../model/sparse-embedding.js';
import type { GradientReducer } from './gradient-reducer.js';

/**
 * All-to-all of (ids, values) blocks: `outgoing[d]` goes to rank d, and the result's entry s is what
 * rank s sent this worker. Carried by the reducer's all-gather (every worker's blocks for every
 * destination travel the whole ring), which costs W times a direct exchange: fit for the small
 * per-step payloads of a sharded table's lookups; a data plane with direct peer links is the way
 * to carry large ones (issue 14 item 4). What arrives is checked against its own header before any
 * of it is used: a block of the wrong size is a RangeError naming its sender.
 */
export async function allToAllBlocks(reducer: GradientReducer, outgoing: readonly SparseRowGrad[], rank: number, step: number): Promise<SparseRowGrad[]> {
  const world = outgoing.length;
  // Header: each destination's id count and value count, then the ids themselves.
  const header = Int32Array.from([...outgoing.map((b) => b.rows.length), ...outgoing.map((b) => b.values.length)]);
  const sent = {
    rows: concatArrays((n) => new Int32Array(n), [header, ...outgoing.map((b) => b.rows)]),
    values: concatArrays(
      (n) => new Float32Array(n),
      outgoing.map((b) => b.values),
    ),
  };
  const gathered = await reducer.allGatherBlocks(sent, step);
  if (gathered.length !== world) throw new RangeError(`all-to-all of ${world} blocks in a world of ${gathered.length}`);
  return gathered.map((block, source) => blockFor(block, rank, world, source));
}

/** The part of `source`'s gathered block addressed to `rank`. */
function blockFor(block: SparseRowGrad, rank: number, world: number, source: number): SparseRowGrad {
  const counts = block.rows.subarray(0, 2 * world);
  const idCounts = Array.from(counts.subarray(0, world));
  const valueCounts = Array.from(counts.subarray(world));
  const ids = idCounts.reduce((a, b) => a + b, 0);
  const values = valueCounts.reduce((a, b) => a + b, 0);
  if (
    counts.length !== 2 * world ||
    [...idCounts, ...valueCounts].some((c) => c < 0) ||
    block.rows.length !== 2 * world + ids ||
    block.values.length !== values
  ) {
    throw new RangeError(`all-to-all: rank ${source}'s blocks do not match their header (${block.rows.length} ids, ${block.values.length} values)`);
  }
  const idStart = 2 * world + idCounts.slice(0, rank).reduce((a, b) => a + b, 0);
  const valueStart = valueCounts.slice(0, rank).reduce((a, b) => a + b, 0);
  return { rows: block.rows.subarray(idStart, idStart + idCounts[rank]!), values: block.values.subarray(valueStart, valueStart + valueCounts[rank]!) };
}
