import { type GraphBuilder, sizeOf, type Value } from '../graph-builder.js';

/** `x` with the same values in another shape. */
export function reshape(g: GraphBuilder, x: Value, shape: readonly number[]): Value {
  if (sizeOf(shape) !== sizeOf(x.shape)) throw new Error(`Reshape of [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  return g.node('Reshape', [x, g.int64s(shape)], shape);
}
