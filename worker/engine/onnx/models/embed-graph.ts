import { GraphBuilder } from '../graph-builder.js';
import { identity } from '../ops/identity.js';
import { encodeModel } from '../onnx-model.js';
import { mlpEmbed } from './mlp-embed.js';

/**
 * One tower's forward as a graph: `rows` pooled inputs of width `inDim` through the MLP `prefix`
 * (sizes [inDim, hidden, out]) to unit embeddings; the momentum key tower's keys. Inputs `pooled`
 * and the parameters by name; output `embedding`, the name returned.
 */
export function towerEmbedGraph(prefix: string, rows: number, sizes: readonly [number, number, number]): { model: Uint8Array; output: string; name: string } {
  const [inDim, hidden, out] = sizes;
  const g = new GraphBuilder(`embed-${prefix}-n${rows}-${inDim}x${hidden}x${out}`);
  const pooled = g.input('pooled', [rows, inDim]);
  const params = new Map([
    [`${prefix}.w0`, g.input(`${prefix}.w0`, [inDim, hidden])],
    [`${prefix}.b0`, g.input(`${prefix}.b0`, [hidden])],
    [`${prefix}.w1`, g.input(`${prefix}.w1`, [hidden, out])],
    [`${prefix}.b1`, g.input(`${prefix}.b1`, [out])],
  ]);
  const embedding = identity(g, mlpEmbed(g, pooled, params, prefix, 2));
  g.output(embedding);
  return { model: encodeModel(g), output: embedding.name, name: g.name };
}
