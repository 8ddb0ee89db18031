import { type GraphBuilder, type GraphNode, sizeOf, type Value } from './graph-builder.js';
import { GRADIENT_RULES } from './grads/registry.js';
import { add } from './ops/add.js';

/**
 * Reverse-mode differentiation of the graph `g` has recorded so far: adds to `g` the nodes that
 * compute d(loss)/d(x) for every x of `wrt`, seeded with `seed` (ones of the loss's shape when
 * absent), and returns them in order. Only nodes on a path from `wrt` to `loss` are differentiated;
 * an x the loss does not depend on gets zeros. Contributions to a value used twice are summed.
 */
export function gradients(g: GraphBuilder, loss: Value, wrt: readonly Value[], seed?: Value): Value[] {
  const { nodes, dependsOnWrt } = relevantNodes(g, loss, wrt);
  const grads = new Map<string, Value>();
  grads.set(loss.name, seed ?? g.constant(new Array<number>(sizeOf(loss.shape)).fill(1), loss.shape));
  for (const node of [...nodes].reverse()) {
    const dy = grads.get(node.output.name);
    if (dy === undefined) continue;
    const rule = GRADIENT_RULES[node.op];
    if (rule === undefined) throw new Error(`graph ${g.name}: no gradient rule for ${node.op}`);
    const inputGrads = rule(g, node, dy);
    node.inputs.forEach((x, i) => {
      const build = inputGrads[i];
      // Inputs off every path from `wrt` (constants, the bank, a stopped value) cost no nodes.
      if (build === null || build === undefined || !dependsOnWrt.has(x.name)) return;
      const dx = build();
      const before = grads.get(x.name);
      grads.set(x.name, before === undefined ? dx : add(g, before, dx));
    });
  }
  return wrt.map((x) => grads.get(x.name) ?? g.constant(new Array<number>(sizeOf(x.shape)).fill(0), x.shape));
}

/**
 * The nodes that depend on some value of `wrt` and that `loss` depends on, in recorded order, and
 * the names of every value that depends on `wrt`. A stopped value (see ops/stop-gradient.ts) depends
 * on nothing.
 */
function relevantNodes(g: GraphBuilder, loss: Value, wrt: readonly Value[]): { nodes: GraphNode[]; dependsOnWrt: Set<string> } {
  const dependsOnWrt = new Set(wrt.map((v) => v.name));
  const forward = g.nodes.filter((n) => {
    if (g.isStopped(n.output) || !n.inputs.some((v) => dependsOnWrt.has(v.name))) return false;
    dependsOnWrt.add(n.output.name);
    return true;
  });
  const needed = new Set([loss.name]);
  const backward: GraphNode[] = [];
  for (const n of [...forward].reverse()) {
    if (!needed.has(n.output.name)) continue;
    backward.push(n);
    for (const v of n.inputs) needed.add(v.name);
  }
  return { nodes: backward.reverse(), dependsOnWrt };
}
