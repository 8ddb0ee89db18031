import type { GraphBuilder, Value } from '../graph-builder.js';

/** Rows `indices` of the matrix `table` ([R, e] by [N] → [N, e]): an embedding lookup, in inference graphs only (no gradient rule). */
export function gather(g: GraphBuilder, table: Value, indices: Value): Value {
  if (table.shape.length !== 2 || indices.shape.length !== 1) throw new Error(`Gather of [${indices.shape.join(', ')}] from [${table.shape.join(', ')}]`);
  return g.node('Gather', [table, indices], [indices.shape[0]!, table.shape[1]!], { axis: { kind: 'int', value: 0 } });
}
