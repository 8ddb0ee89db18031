import * as tf from '@tensorflow/tfjs-core';
import type { CheckpointArray } from '../../common/checkpoint-file.js';
import { TimeSlicer } from '../../common/time-slicer.js';
import { infonceBankLoss } from '../../common/infonce-bank-loss.js';
import { Rng } from '../../common/random.js';
import { MASKED } from '../bank/logit-bias.js';
import { mlpEmbed, mlpSpecs } from '../model/mlp.js';
import { MomentumEmbedding } from '../model/momentum-embedding.js';
import { ParamSet, type ParamSpec } from '../model/param-set.js';
import { SparseEmbedding, type SparseRowGrad } from '../model/sparse-embedding.js';
import { RowwiseAdagrad } from '../optim/rowwise-adagrad.js';
import { emaUpdate } from '../optim/ema.js';
import type { FeatureRows } from '../text/text-features.js';
import type { ContrastiveModel, EncodedBatch } from './contrastive-model.js';
import { LOGIT_SCALE } from './logit-scale.js';
import { idRange } from '../../common/id-range.js';
import { heldBytes, type MemoryBytes } from '../../common/memory-parts.js';

/**
 * A batch of click events: each row's query (its features, already reduced to the tables' buckets,
 * and a key that is equal for rows of the same query) and site id.
 */
export interface ClickBatch {
  /** Row r's query features: queryFeatures.ids[offsets[r] .. offsets[r + 1]). */
  queryFeatures: FeatureRows;
  /** Equal for rows of the same query (the site→query term masks them): a query id or a hash. */
  queryKeys: Int32Array;
  sites: Int32Array;
}

/** Shape and optimisation settings of the two towers. */
export interface ClickLogModelOptions {
  /** Hash buckets per tower's embedding table (a power of two). */
  buckets: number;
  embeddingDim: number;
  hiddenDim: number;
  outputDim: number;
  /** MoCo momentum m of the key tower. */
  momentum: number;
  /** Row-wise Adagrad learning rate of the embedding tables. */
  sparseLr: number;
  /** Initial logit scale 1/τ, learned when `learnableTemperature`. */
  initialScale: number;
  learnableTemperature: boolean;
  /** Rows per group of the site→query term's negatives (0 = the whole batch). */
  siteTermGroup: number;
  /** A per-site ID embedding row added to the site's pooled text features (config clicklog.site_ids). */
  siteIds: boolean;
  seed: number;
}

/** The per-site ID embedding: a row per site of the vocabulary, its Adagrad state and its momentum copy. */
interface SiteIdTables {
  table: SparseEmbedding;
  opt: RowwiseAdagrad;
  key: MomentumEmbedding;
  /** Each site's one "feature": its own row (offsets 0…n, ids 0…n−1), so the tables' pooling reads it. */
  rows: FeatureRows;
}

const LAYERS = 2;

/**
 * DSSM-style two-tower model for query→site retrieval: hashed word/trigram features → sparse table →
 * mean pool → MLP → unit vector, one tower per side, plus the momentum copy of the site tower.
 *
 * The bound needs one critic for the positive and the negatives, so the query tower is trained MoCo's
 * way against momentum site keys only (positive and bank alike). Were the positive scored by the online
 * site tower instead, the towers could tell online from momentum keys and push the "bound" past the
 * true MI (we saw 8.3 nats on data with 4.1). The online site tower, which only feeds the momentum
 * tower, learns from the reverse in-batch term site→query against the online query tower (as xMoCo's
 * two directions do, Yang et al. 2021, here without a second bank).
 */
export class ClickLogModel implements ContrastiveModel<ClickBatch> {
  readonly online: ParamSet;
  readonly key: ParamSet;
  readonly dim: number;
  readonly trainsPositives = false;
  /** The sites: a positive's id is its site's. */
  readonly itemCount: number;
  readonly queryTable: SparseEmbedding;
  readonly siteTable: SparseEmbedding;
  readonly keyTable: MomentumEmbedding;
  readonly queryOpt: RowwiseAdagrad;
  readonly siteOpt: RowwiseAdagrad;
  /** With `siteIds`: the sites' ID rows; null otherwise. */
  readonly siteIds: SiteIdTables | null;
  /** Offset of the site tower inside `online.values` (the key tower mirrors that slice). */
  private readonly siteOffset: number;

  constructor(
    readonly siteFeatures: FeatureRows,
    readonly options: ClickLogModelOptions,
  ) {
    const rng = new Rng(options.seed);
    const sizes = [options.embeddingDim, options.hiddenDim, options.outputDim];
    const specs: ParamSpec[] = [...mlpSpecs('q', sizes)];
    if (options.learnableTemperature) specs.push({ name: LOGIT_SCALE, shape: [1] });
    const siteSpecs = mlpSpecs('s', sizes);
    this.online = ParamSet.glorot([...specs, ...siteSpecs], rng);
    this.siteOffset = this.online.offsets[specs.length]!;
    if (options.learnableTemperature) this.online.values[this.online.offsets[specs.length - 1]!] = Math.log(options.initialScale);
    this.key = new ParamSet(siteSpecs, this.online.values.slice(this.siteOffset));
    this.dim = options.outputDim;
    this.itemCount = siteFeatures.offsets.length - 1;
    this.queryTable = new SparseEmbedding(options.buckets, options.embeddingDim, rng);
    this.siteTable = new SparseEmbedding(options.buckets, options.embeddingDim, rng);
    this.keyTable = new MomentumEmbedding(this.siteTable, options.momentum);
    this.queryOpt = new RowwiseAdagrad(options.buckets, options.embeddingDim, options.sparseLr);
    this.siteOpt = new RowwiseAdagrad(options.buckets, options.embeddingDim, options.sparseLr);
    this.siteIds = options.siteIds ? siteIdTables(this.itemCount, options) : null;
  }

  momentumKeys(batch: ClickBatch, step: number): Float32Array {
    return embedWith(this.key, this.pooledKeyRows(batch, step), this.options.embeddingDim, 's');
  }

  /** The key tower's input for step `step`: the batch's site rows of the momentum tables, mean-pooled (plus the ID rows), B×e. */
  pooledKeyRows(batch: ClickBatch, step: number): Float32Array {
    return this.keySiteRows(batch.sites, step);
  }

  /** The towers' inputs: the batch's query and site rows of the online tables, mean-pooled (B×e each; the site's ID row added). */
  pooledRows(batch: ClickBatch): [Float32Array, Float32Array] {
    const sites = this.siteTable.pool(this.siteFeatures, batch.sites);
    if (this.siteIds !== null) addInto(sites, this.siteIds.table.pool(this.siteIds.rows, batch.sites));
    return [this.pooledQueryRows(batch), sites];
  }

  /** The query tower's input alone: the batch's query rows of the online table, mean-pooled (B×e). */
  pooledQueryRows(batch: ClickBatch): Float32Array {
    return this.queryTable.pool(batch.queryFeatures, rowsOf(batch));
  }

  /** The key tower's input for `sites` at `step`: their momentum text rows pooled, plus their momentum ID rows. */
  private keySiteRows(sites: Int32Array, step: number): Float32Array {
    const pooled = this.keyTable.pool(this.siteFeatures, sites, step);
    if (this.siteIds !== null) addInto(pooled, this.siteIds.key.pool(this.siteIds.rows, sites, step));
    return pooled;
  }

  positiveIds(batch: ClickBatch): Int32Array {
    return batch.sites;
  }

  sparseInputs(batch: ClickBatch): tf.Tensor2D[] {
    const e = this.options.embeddingDim;
    return this.pooledRows(batch).map((rows) => tf.tensor2d(rows, [rows.length / e, e]));
  }

  encode(params: ReadonlyMap<string, tf.Tensor>, inputs: tf.Tensor2D[], keys: tf.Tensor2D): EncodedBatch {
    return { q: mlpEmbed(inputs[0]!, params, 'q', LAYERS), kpos: keys };
  }

  /**
   * Site→query InfoNCE over the batch (or over groups of `siteTermGroup` rows); rows sharing the site
   * or the query are not negatives of each other.
   */
  auxiliaryLoss(enc: EncodedBatch, params: ReadonlyMap<string, tf.Tensor>, inputs: tf.Tensor2D[], batch: ClickBatch, scale: tf.Scalar): tf.Scalar {
    const b = batch.sites.length;
    const mask = siteTermMask(batch, this.options.siteTermGroup);
    const s = mlpEmbed(inputs[1]!, params, 's', LAYERS);
    // The fused InfoNCE with no bank: positives on the diagonal, gradients to both towers.
    const noBank = { keys: tf.zeros([0, this.dim]) as tf.Tensor2D, keysT: tf.zeros([this.dim, 0]) as tf.Tensor2D };
    return infonceBankLoss(s, enc.q, scale, noBank, tf.tensor2d(mask, [b, b]));
  }

  sparseRowGrads(batch: ClickBatch, inputGrads: Float32Array[]): SparseRowGrad[] {
    const grads = [
      this.queryTable.rowGradient(batch.queryFeatures, rowsOf(batch), inputGrads[0]!),
      this.siteTable.rowGradient(this.siteFeatures, batch.sites, inputGrads[1]!),
    ];
    // The ID row is added to the pooled text rows, so it takes the pooled gradient as it is.
    if (this.siteIds !== null) grads.push(this.siteIds.table.rowGradient(this.siteIds.rows, batch.sites, inputGrads[1]!));
    return grads;
  }

  applySparse(grads: SparseRowGrad[], step: number): void {
    this.queryOpt.apply(this.queryTable.table, grads[0]!);
    applyWithMomentum(this.siteTable, this.siteOpt, this.keyTable, grads[1]!, step);
    if (this.siteIds !== null) applyWithMomentum(this.siteIds.table, this.siteIds.opt, this.siteIds.key, grads[2]!, step);
  }

  momentumUpdate(): void {
    emaUpdate(this.key.values, this.online.values.subarray(this.siteOffset), this.options.momentum);
  }

  memory(): Pick<MemoryBytes, 'tables' | 'optimizer' | 'dense'> {
    return {
      tables: heldBytes([this.queryTable, this.siteTable, this.keyTable, ...(this.siteIds ? [this.siteIds.table, this.siteIds.key] : [])]),
      optimizer: heldBytes([this.queryOpt, this.siteOpt, ...(this.siteIds ? [this.siteIds.opt] : [])]),
      dense: heldBytes([this.online, this.key]),
    };
  }

  /**
   * The state outside `online`: the three tables, the Adagrad rows, the key tower and the momentum
   * table's stamps. The lazy momentum table is saved as it stands, with each row's stamp: settling every
   * row first would change the live run's rounding, and a resumed run would then differ in the last
   * bits from one that never stopped.
   */
  saveState(): Record<string, CheckpointArray> {
    const f32 = (data: Float32Array, shape: number[]): CheckpointArray => ({ dtype: 'float32', shape, data });
    const e = this.options.embeddingDim;
    const rows = this.options.buckets;
    return {
      'table.query': f32(this.queryTable.table, [rows, e]),
      'table.site': f32(this.siteTable.table, [rows, e]),
      'table.key': f32(this.keyTable.table, [rows, e]),
      'adagrad.query': f32(this.queryOpt.accum, [rows]),
      'adagrad.site': f32(this.siteOpt.accum, [rows]),
      'key.dense': f32(this.key.values, [this.key.size]),
      'key.stamp': { dtype: 'int32', shape: [rows], data: this.keyTable.stamp },
      ...(this.siteIds === null
        ? {}
        : {
            'table.site_id': f32(this.siteIds.table.table, [this.itemCount, e]),
            'table.key_id': f32(this.siteIds.key.table, [this.itemCount, e]),
            'adagrad.site_id': f32(this.siteIds.opt.accum, [this.itemCount]),
            'key_id.stamp': { dtype: 'int32', shape: [this.itemCount], data: this.siteIds.key.stamp },
          }),
    };
  }

  /** Sets that state from arrays already checked to have saveState()'s names, dtypes and shapes. */
  restoreState(state: ReadonlyMap<string, CheckpointArray>): void {
    const put = (name: string, target: Float32Array | Int32Array) => target.set(state.get(name)!.data);
    put('table.query', this.queryTable.table);
    put('table.site', this.siteTable.table);
    put('table.key', this.keyTable.table);
    put('adagrad.query', this.queryOpt.accum);
    put('adagrad.site', this.siteOpt.accum);
    put('key.dense', this.key.values);
    put('key.stamp', this.keyTable.stamp);
    if (this.siteIds !== null) {
      put('table.site_id', this.siteIds.table.table);
      put('table.key_id', this.siteIds.key.table);
      put('adagrad.site_id', this.siteIds.opt.accum);
      put('key_id.stamp', this.siteIds.key.stamp);
    }
  }

  /** Query-tower embeddings of queries with these features (evaluation), n×d. */
  embedQueries(features: FeatureRows): Promise<Float32Array> {
    const rows = idRange(0, features.offsets.length - 1);
    return embedAll(this.online, rows.length, (lo, hi) => this.queryTable.pool(features, rows.subarray(lo, hi)), this.options.embeddingDim, 'q');
  }

  /** Key-tower embeddings of the given site ids after `step` (evaluation: the critic's site side), n×d. */
  embedSites(ids: Int32Array, step: number): Promise<Float32Array> {
    // Each chunk settles the momentum rows it touches to the same step, so chunking changes nothing.
    return embedAll(this.key, ids.length, (lo, hi) => this.keySiteRows(ids.subarray(lo, hi), step + 1), this.options.embeddingDim, 's');
  }
}

/**
 * The logit bias of the site→query term, B×B: 0 on the diagonal (the positive) and for in-group rows
 * of other sites and queries, MASKED for rows of another group (`group` > 0) or sharing the site or
 * the query (they are not negatives).
 */
export function siteTermMask(batch: ClickBatch, group: number): Float32Array {
  const b = batch.sites.length;
  const mask = new Float32Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < b; j++) {
      const otherGroup = group > 0 && Math.floor(i / group) !== Math.floor(j / group);
      if (j !== i && (otherGroup || batch.sites[j] === batch.sites[i] || batch.queryKeys[j] === batch.queryKeys[i])) mask[i * b + j] = MASKED;
    }
  }
  return mask;
}

/** The ID tables of `sites` sites: rows at zero (the model starts as the text features alone), their Adagrad and momentum copy. */
function siteIdTables(sites: number, o: ClickLogModelOptions): SiteIdTables {
  const table = new SparseEmbedding(sites, o.embeddingDim, null);
  return {
    table,
    opt: new RowwiseAdagrad(sites, o.embeddingDim, o.sparseLr),
    key: new MomentumEmbedding(table, o.momentum),
    rows: { offsets: idRange(0, sites + 1), ids: idRange(0, sites) },
  };
}

/** `into` += `add`, elementwise. */
function addInto(into: Float32Array, add: Float32Array): void {
  for (let i = 0; i < into.length; i++) into[i]! += add[i]!;
}

/** Row-wise Adagrad on a site table and the lazy momentum step of its key copy around it. */
function applyWithMomentum(table: SparseEmbedding, opt: RowwiseAdagrad, key: MomentumEmbedding, grad: SparseRowGrad, step: number): void {
  key.beforeOnlineUpdate(grad.rows, step);
  opt.apply(table.table, grad);
  key.afterOnlineUpdate(grad.rows, step);
}

/** A batch's rows 0 … B−1: its queries' rows of its own feature table. */
function rowsOf(batch: ClickBatch): Int32Array {
  return idRange(0, batch.sites.length);
}

/** Runs one tower's MLP on a batch's pooled inputs outside autodiff. */
function embedWith(params: ParamSet, pooled: Float32Array, inDim: number, prefix: string): Float32Array {
  const t = params.tensors();
  const e = tf.tidy(() => mlpEmbed(tf.tensor2d(pooled, [pooled.length / inDim, inDim]), t, prefix, LAYERS));
  const out = e.dataSync() as Float32Array;
  tf.dispose([e, ...t.values()]);
  return out;
}

/** {@link embedWith} over a whole vocabulary: in chunks to bound memory, yielding between them. */
async function embedAll(params: ParamSet, n: number, pool: (lo: number, hi: number) => Float32Array, inDim: number, prefix: string): Promise<Float32Array> {
  const chunk = 4096;
  const parts: Float32Array[] = [];
  const slicer = new TimeSlicer();
  // Pooled a chunk at a time too: pooling 800,000 sites at once is seconds without a yield, longer
  // than a cluster member's heartbeat timeout.
  for (let start = 0; start < n; start += chunk) {
    await slicer.maybeYield();
    parts.push(embedWith(params, pool(start, Math.min(n, start + chunk)), inDim, prefix));
  }
  const out = new Float32Array(parts.reduce((m, p) => m + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
