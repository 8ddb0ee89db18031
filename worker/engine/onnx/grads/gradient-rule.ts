import type { GraphBuilder, GraphNode, Value } from '../graph-builder.js';

/**
 * A reverse-mode rule: given the gradient `dy` of the loss with respect to a node's output, the
 * nodes that compute the gradient with respect to each of its inputs (null for an input that has
 * none, such as axes or a shape).
 */
export type GradientRule = (g: GraphBuilder, node: GraphNode, dy: Value) => (Value | null)[];
