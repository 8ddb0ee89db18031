import type { GraphBuilder, Value } from '../graph-builder.js';

/** The values joined along `axis` (every other dimension equal). */
export function concat(g: GraphBuilder, xs: readonly Value[], axis: number): Value {
  const first = xs[0]!;
  const rank = first.shape.length;
  const a = axis < 0 ? axis + rank : axis;
  for (const x of xs) {
    if (x.shape.length !== rank || x.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new Error(`Concat along axis ${a} of [${first.shape.join(', ')}] and [${x.shape.join(', ')}]`);
    }
  }
  const shape = first.shape.map((d, i) => (i === a ? xs.reduce((n, x) => n + x.shape[a]!, 0) : d));
  return g.node('Concat', xs, shape, { axis: { kind: 'int', value: a } });
}
