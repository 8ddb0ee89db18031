import { GraphBuilder } from '../graph-builder.js';
import { encodeModel } from '../onnx-model.js';
import { bagMeanPool } from './bag-mean-pool.js';
import { mlpEmbed } from './mlp-embed.js';

/** A trained tower's weights: its embedding table and the MLP's layers (`${prefix}.w0` … by name). */
export interface TowerWeights {
  /** The hashed-feature table, rows × embeddingDim. */
  table: Float32Array;
  rows: number;
  embeddingDim: number;
  /** Dense parameters by name with their shapes. */
  params: ReadonlyMap<string, { data: Float32Array; shape: readonly number[] }>;
  prefix: string;
  layers: number;
}

/**
 * A tower as a self-contained inference model any ONNX runtime can load: inputs `ids` (int64 [N],
 * feature row ids) and `offsets` (int64 [B+1], CSR: item b owns ids[offsets[b] .. offsets[b+1])),
 * output `embedding` (float32 [B, d], unit rows), the weights inside as initializers.
 */
export function towerInferenceGraph(name: string, w: TowerWeights, docString: string): Uint8Array {
  const g = new GraphBuilder(name);
  const bags = g.symbol('items');
  const ids = g.input('ids', [g.symbol('features')], 'int64');
  const offsets = g.input('offsets', [g.symbol('items_plus_one')], 'int64');
  const table = g.constant(w.table, [w.rows, w.embeddingDim]);
  const params = new Map([...w.params].map(([key, p]) => [key, g.constant(p.data, p.shape)] as const));
  const pooled = bagMeanPool(g, table, { ids, offsets, bags });
  g.namedOutput('embedding', mlpEmbed(g, pooled, params, w.prefix, w.layers));
  return encodeModel(g, docString);
}
