import type { ElemType, GraphBuilder, Value } from '../graph-builder.js';

/** ONNX's numbers of the element types a Cast can produce. */
const TO: Partial<Record<ElemType, number>> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };

/** `x` converted to the element type `to`. */
export function cast(g: GraphBuilder, x: Value, to: ElemType): Value {
  return g.node('Cast', [x], x.shape, { to: { kind: 'int', value: TO[to]! } }, to);
}
