import type { GraphBuilder, Value } from '../graph-builder.js';
import { and } from '../ops/and.js';
import { cast } from '../ops/cast.js';
import { div } from '../ops/div.js';
import { gather } from '../ops/gather.js';
import { greaterOrEqual } from '../ops/greater-or-equal.js';
import { less } from '../ops/less.js';
import { matMul } from '../ops/matmul.js';
import { max } from '../ops/max.js';
import { range } from '../ops/range.js';
import { shapeOf } from '../ops/shape.js';
import { sub } from '../ops/sub.js';

/** The bags of {@link bagMeanPool}: feature ids and CSR offsets, both int64, with their symbolic sizes. */
export interface Bags {
  /** Feature row ids, [N]. */
  ids: Value;
  /** Bag b owns ids[offsets[b] .. offsets[b+1]), [B+1]. */
  offsets: Value;
  /** The symbolic dimension B (the number of bags). */
  bags: number;
}

/**
 * The mean of each bag's rows of `table` ([R, e] → [B, e]), as worker/model/sparse-embedding.ts
 * pools; an empty bag pools to zeros. ONNX has no EmbeddingBag: the rows are gathered, and a B×N
 * matrix of bag membership (position n is in bag b when offsets[b] ≤ n < offsets[b+1]) sums them.
 */
export function bagMeanPool(g: GraphBuilder, table: Value, b: Bags): Value {
  const n = b.ids.shape[0]!;
  const e = table.shape[1]!;
  const rows = gather(g, table, b.ids);
  const offsets = cast(g, b.offsets, 'float32');
  // offsets[0 .. B) and offsets[1 .. B], as columns: every bag's start and end.
  const column = (start: number, end: number) =>
    g.node('Reshape', [g.node('Slice', [offsets, g.int64s([start]), g.int64s([end]), g.int64s([0])], [b.bags]), g.int64s([-1, 1])], [b.bags, 1]);
  const starts = column(0, -1);
  const ends = column(1, Number.MAX_SAFE_INTEGER);
  const count = g.node('Reshape', [cast(g, shapeOf(g, b.ids), 'float32'), g.int64s([])], []);
  const positions = g.node('Reshape', [range(g, count, n), g.int64s([1, -1])], [1, n]);
  const member = cast(g, and(g, greaterOrEqual(g, positions, starts), less(g, positions, ends)), 'float32');
  const sums = matMul(g, member, rows);
  if (sums.shape[1] !== e) throw new Error(`graph ${g.name}: pooled rows of width ${sums.shape[1]}, not ${e}`);
  return div(g, sums, max(g, sub(g, ends, starts), g.scalar(1)));
}
