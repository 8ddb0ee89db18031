import type { Chunk } from '../proto/generated/infobound/v1/Chunk.js';

/** Little-endian float32 bytes of `v`, as a chunk carries them. */
export function floats(...v: number[]): Buffer {
  return Buffer.from(Float32Array.from(v).buffer);
}

/** A chunk rank 0 may send rank 1 in a world of 2 at generation 3, step 1: reduce-scatter of segment 0 (1 element). */
export const VALID_CHUNK: Chunk = {
  generation: 3,
  step: 1,
  op: 'ALLREDUCE_SUM',
  tensor: 0,
  phase: 0,
  segment: 0,
  offset: 0,
  segment_length: 1,
  from_rank: 0,
  dtype: 'FLOAT32',
  data: floats(1),
};
