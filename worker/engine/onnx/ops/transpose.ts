import type { GraphBuilder, Value } from '../graph-builder.js';

/** `x` with its axes permuted: output axis i is input axis perm[i] (reversed when perm is absent). */
export function transpose(g: GraphBuilder, x: Value, perm: readonly number[] = x.shape.map((_, i) => x.shape.length - 1 - i)): Value {
  if (perm.length !== x.shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new Error(`Transpose with perm [${perm.join(', ')}]`);
  return g.node(
    'Transpose',
    [x],
    perm.map((p) => x.shape[p]!),
    { perm: { kind: 'ints', value: perm } },
  );
}
