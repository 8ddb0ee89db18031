import { GraphBuilder } from '../graph-builder.js';
import { encodeModel } from '../onnx-model.js';
import { add } from '../ops/add.js';
import { cast } from '../ops/cast.js';
import { gather } from '../ops/gather.js';
import { greaterOrEqual } from '../ops/greater-or-equal.js';
import { mul } from '../ops/mul.js';
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
  /** A per-item ID table (the site tower with clicklog.site_ids): its row of an item is added to the pooled features. */
  items?: { table: Float32Array; rows: number };
}

/**
 * A tower as a self-contained inference model any ONNX runtime can load: inputs `ids` (int64 [N],
 * feature row ids) and `offsets` (int64 [B+1], CSR: item b owns ids[offsets[b] .. offsets[b+1])),
 * with an ID table also `items` (int64 [B], each item's row of it, −1 for an item it does not know:
 * its text features alone), output `embedding` (float32 [B, d], unit rows), the weights inside as
 * initializers.
 */
export function towerInferenceGraph(name: string, w: TowerWeights, docString: string): Uint8Array {
  const g = new GraphBuilder(name);
  const bags = g.symbol('items');
  const ids = g.input('ids', [g.symbol('features')], 'int64');
  const offsets = g.input('offsets', [g.symbol('items_plus_one')], 'int64');
  const table = g.constant(w.table, [w.rows, w.embeddingDim]);
  const params = new Map([...w.params].map(([key, p]) => [key, g.constant(p.data, p.shape)] as const));
  let pooled = bagMeanPool(g, table, { ids, offsets, bags });
  if (w.items !== undefined) {
    const items = g.input('items', [bags], 'int64');
    const zero = g.int64s([0]);
    const rows = gather(g, g.constant(w.items.table, [w.items.rows, w.embeddingDim]), g.node('Max', [items, zero], [bags], {}, 'int64'));
    // A column of 1 for a known item, 0 for −1 (bags is symbolic: the shape is given as [-1, 1]).
    const known = g.node('Reshape', [cast(g, greaterOrEqual(g, items, zero), 'float32'), g.int64s([-1, 1])], [bags, 1]);
    pooled = add(g, pooled, mul(g, rows, known));
  }
  g.namedOutput('embedding', mlpEmbed(g, pooled, params, w.prefix, w.layers));
  return encodeModel(g, docString);
}
