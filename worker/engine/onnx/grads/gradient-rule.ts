import type { GraphBuilder, GraphNode, Value } from '../graph-builder.js';

/** How to build one input's gradient, called only when that gradient is needed; null when it has none (axes, shapes). */
export type InputGradient = (() => Value) | null;

/**
 * A reverse-mode rule: given the gradient `dy` of the loss with respect to a node's output, how to
 * build the gradient with respect to each of its inputs. Builders run only for inputs on a path
 * from what is differentiated, so a constant operand (the bank, a bias) costs no nodes.
 */
export type GradientRule = (g: GraphBuilder, node: GraphNode, dy: Value) => readonly InputGradient[];

/** A value built on first use and shared after: a subexpression of several inputs' gradients. */
export function shared(build: () => Value): () => Value {
  let value: Value | undefined;
  return () => (value ??= build());
}
