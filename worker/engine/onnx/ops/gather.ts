import type { GraphBuilder, Value } from '../graph-builder.js';

/**
 * Entries `indices` of `data` along `axis` (an embedding lookup on axis 0, an im2col on axis 1):
 * the shape is data's with that axis replaced by indices'. Inputs of inference and of constant
 * operands only: it has no gradient rule.
 */
export function gather(g: GraphBuilder, data: Value, indices: Value, axis = 0): Value {
  if (axis < 0 || axis >= data.shape.length) throw new Error(`Gather along axis ${axis} of [${data.shape.join(', ')}]`);
  const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
  return g.node('Gather', [data, indices], shape, { axis: { kind: 'int', value: axis } });
}
