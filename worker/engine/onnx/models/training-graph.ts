import type { GraphBuilder, Value } from '../graph-builder.js';
import type { ObjectiveHead, ObjectiveHeadShape } from './objective-head.js';

/** A model's training graph: its bytes and the names of what it outputs. */
export interface TrainingGraph {
  model: Uint8Array;
  /** Dense parameter names in ParamSet order; the gradient of `p` is the output `grad.p`. */
  params: string[];
  /** The outputs with the gradients of the model's sparse inputs, in the model's order. */
  inputGrads: string[];
  /** Every output's name: `loss`, the gradients, and the head's further outputs. */
  outputs: string[];
}

/** A training graph's name: the model, its shapes and its head, for error messages and the cache. */
export function trainingGraphName(model: string, shapes: string, learnable: boolean, head: ObjectiveHeadShape): string {
  const flags = [learnable ? 'learnable' : '', head.layout, head.maskHits ? 'hits' : '', head.logged ? 'logged' : ''].filter((f) => f !== '');
  return `${model}-${head.objective}-${shapes}-k${head.bank}-${flags.join('-')}`;
}

/** Declares a training graph's outputs: `loss`, `grad.<name>` for each gradient, then the head's own. */
export function trainingOutputs(g: GraphBuilder, head: ObjectiveHead, grads: readonly Value[], names: readonly string[]): string[] {
  const outputs = [g.namedOutput('loss', head.loss)];
  grads.forEach((grad, i) => outputs.push(g.namedOutput(`grad.${names[i]!}`, grad)));
  for (const [name, value] of head.outputs) outputs.push(g.namedOutput(name, value));
  return outputs.map((o) => o.name);
}
