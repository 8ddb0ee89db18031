import { createHash } from 'node:crypto';
import { combineRowExpStats, mergeLogSumExp, type RowExpStats } from '../../common/log-sum-exp-merge.js';
import { criticRowsOfShards, infonceHeadGradients, ownBlock, type ShardCriticStats } from '../../common/partitioned-infonce.js';
import type { KeyShard } from '../bank/key-shard.js';
import { MASKED, logQCorrection, rowBiasParts } from '../bank/logit-bias.js';
import type { GradientReducer } from '../collective/gradient-reducer.js';
import type { SparseRowGrad } from '../model/sparse-embedding.js';
import type { ContrastiveModel } from './contrastive-model.js';
import type { BankShardInput, BankShardStats, DenseContext, DenseEngine, DenseResult, PartitionedBankEngine } from './dense-engine.js';
import { logitScale } from './logit-scale.js';

/** What a partitioned-bank step reads of its context: the shard, the collectives, this member's rank. */
export interface PartitionedBankContext extends Omit<DenseContext, 'bank'> {
  bank: KeyShard;
  reducer: GradientReducer;
  engine: PartitionedBankEngine;
  rank: number;
}

/** A partitioned step's dense result, with the bank's digests on a logged step. */
export interface PartitionedDenseResult extends DenseResult {
  /** This member's shard. */
  shardDigest?: string;
  /** Every member's shard digest in rank order, hashed: the same on every member. */
  bankDigest?: string;
}

/** Whether `engine` runs a partitioned bank's passes. */
export function runsPartitionedBank(engine: DenseEngine): engine is DenseEngine & PartitionedBankEngine {
  return 'bankShardStats' in engine;
}

/**
 * The dense part of a step against a partitioned bank (Partial FC's scheme, docs/architecture.md §4),
 * equal to the replicated bank's step to float32 rounding: every member's queries are gathered, each
 * member scores all of them against its shard, the members' row statistics are gathered and merged
 * (the same parts in the same order on every member, so every member has the same log-sum-exps),
 * each member computes its shard's part of Σ_j p_ij·key_j for all rows, the parts are summed across
 * the members, and each member takes its own rows back into the head's gradients and the towers'
 * backward. Only the InfoNCE head of the click-log model is partitioned (config checks it).
 */
export async function partitionedBankDense<B>(
  model: ContrastiveModel<B>,
  batch: B,
  keys: Float32Array,
  positiveIds: Int32Array,
  step: number,
  ctx: PartitionedBankContext,
  wantCritic: boolean,
): Promise<PartitionedDenseResult> {
  const { bank: shard, engine, reducer } = ctx;
  const d = model.dim;
  const b = positiveIds.length;
  const scale = logitScale(model.online, ctx.fixedScale);
  const rowBias = rowBiasParts({ positiveIds, logQ: ctx.logQ, inBatchNegatives: ctx.inBatchNegatives, maskAccidentalHits: ctx.maskAccidentalHits });
  const q = await engine.queryEmbeddings(model, batch);

  // Every member's queries, and their positive ids for the accidental-hit masks.
  // Every member's batch is B rows (the coordinator's splits are equal), so member r's rows are rows [rB, (r+1)B).
  const queries = await reducer.allGatherBlocks({ rows: rowBias.hitIds, values: q }, step);
  queries.forEach((block, r) => checkRows(block, b, d, `partitioned bank step ${step}: the queries of rank ${r}`));
  const n = queries.length * b;
  const own = ownBlock({ q, kpos: keys, batchBias: rowBias.batch, scale, dim: d });
  // The shard's passes run one member's rows against one slice of the shard at a time: intermediates
  // of B×SLICE_KEYS however large K is, and each run short (ONNX Runtime's run holds the event loop,
  // and with it the heartbeat, for its whole length).
  const slices = shardSlices(shard, heldSlotBias(shard, ctx.logQ));
  const inputs = (x: SparseRowGrad): BankShardInput[] =>
    slices.map((slice) => ({
      q: x.values,
      dim: d,
      scale,
      keys: slice.keys,
      bankBias: slice.bias,
      hits: ctx.maskAccidentalHits ? { rowIds: x.rows, slotIds: slice.ids } : null,
    }));
  const logged = wantCritic && shard.combinedFilled > 0;

  // What this member sends: its shard's statistics over all n rows, column by column (the critic's
  // too when logged), then its own rows' in-batch block; on a logged step its shard's digest.
  const columns = logged ? 5 : 2;
  const sent = new Float32Array(columns * n + 2 * b);
  for (const [r, x] of queries.entries()) {
    const parts: BankShardStats[] = [];
    for (const input of inputs(x)) parts.push(await engine.bankShardStats(input, logged));
    const s = combineSlices(parts, logged);
    [s.max, s.sumExp, ...(logged ? [s.critic!.max, s.critic!.sumExp, s.critic!.softplus] : [])].forEach((c, i) => sent.set(c, i * n + r * b));
  }
  sent.set(own.stats.max, columns * n);
  sent.set(own.stats.sumExp, columns * n + b);
  const shardDigest = logged ? shard.digest() : '';
  const statBlocks = await reducer.allGatherBlocks({ rows: logged ? digestInts(shardDigest) : new Int32Array(0), values: sent }, step);
  statBlocks.forEach((block, r) => {
    if (block.values.length !== sent.length)
      throw new Error(`partitioned bank step ${step}: rank ${r} sent ${block.values.length} statistics, expected ${sent.length}`);
  });
  const column = (r: number, c: number) => statBlocks[r]!.values.subarray(c * n, (c + 1) * n);
  // The in-batch part of every row, from the member that owns the row.
  const inBatch: RowExpStats = { max: new Float32Array(n), sumExp: new Float32Array(n) };
  statBlocks.forEach((block, r) => {
    inBatch.max.set(block.values.subarray(columns * n, columns * n + b), r * b);
    inBatch.sumExp.set(block.values.subarray(columns * n + b), r * b);
  });
  const lse = mergeLogSumExp([inBatch, ...statBlocks.map((_, r) => ({ max: column(r, 0), sumExp: column(r, 1) }))]);

  const mine = (a: Float32Array, width: number) => a.subarray(ctx.rank * b * width, (ctx.rank + 1) * b * width);
  // The shard's part of Σ p·key for every row, laid out so that the reduce-scatter's segment of each
  // member is its own rows: segment s holds rank s − 1's (RingReducer.reduceScatterSum).
  const w = queries.length;
  const weightedAll = new Float32Array(n * d);
  for (const [r, x] of queries.entries()) {
    const sum = weightedAll.subarray(((r + 1) % w) * b * d, (((r + 1) % w) + 1) * b * d);
    for (const input of inputs(x)) {
      const part = await engine.bankShardWeightedKeys(input, lse.subarray(r * b, (r + 1) * b));
      for (let i = 0; i < sum.length; i++) sum[i]! += part[i]!;
    }
  }
  const weighted = await reducer.reduceScatterSum(weightedAll, step);
  const head = infonceHeadGradients(own, mine(lse, 1), weighted);
  const back = await engine.partitionedBackward(model, batch, keys, head, ctx.fixedScale);
  const result: PartitionedDenseResult = { loss: head.loss, scale, grad: back.grad, inputGrads: back.inputGrads };
  if (logged) {
    const critic: ShardCriticStats[] = statBlocks.map((_, r) => ({
      max: mine(column(r, 2), 1),
      sumExp: mine(column(r, 3), 1),
      softplus: mine(column(r, 4), 1),
    }));
    result.critic = criticRowsOfShards(own.positive, critic, shard.combinedFilled);
    result.shardDigest = shardDigest;
    result.bankDigest = combinedDigest(statBlocks.map((block, r) => hexOfDigestInts(block.rows, r)));
  }
  return result;
}

/** Keys of a shard a graph run scores at most (B×SLICE_KEYS logits: 64 MiB at B = 256). */
const SLICE_KEYS = 65_536;

/** A contiguous run of a shard's slots: views of its keys, ids and biases. */
interface ShardSlice {
  keys: Float32Array;
  ids: Int32Array;
  bias: Float32Array;
}

/** The shard's slots in slices of at most SLICE_KEYS (views, no copies). */
function shardSlices(shard: KeyShard, bias: Float32Array): ShardSlice[] {
  const slices: ShardSlice[] = [];
  for (let from = 0; from < shard.capacity; from += SLICE_KEYS) {
    const to = Math.min(shard.capacity, from + SLICE_KEYS);
    slices.push({ keys: shard.keys.subarray(from * shard.dim, to * shard.dim), ids: shard.ids.subarray(from, to), bias: bias.subarray(from, to) });
  }
  return slices;
}

/** One block's statistics over the whole shard from its slices': maxima and sums of exponentials combined, softplus sums added. */
function combineSlices(parts: readonly BankShardStats[], logged: boolean): BankShardStats {
  if (parts.length === 1) return parts[0]!;
  const combined: BankShardStats = combineRowExpStats(parts);
  if (logged) {
    const softplus = new Float32Array(parts[0]!.max.length);
    for (const p of parts) p.critic!.softplus.forEach((v, i) => (softplus[i]! += v));
    combined.critic = { ...combineRowExpStats(parts.map((p) => p.critic!)), softplus };
  }
  return combined;
}

/** Each slot's bias: −logQ of the key's item where the shard holds a key, MASKED where it does not. */
function heldSlotBias(shard: KeyShard, logQ: Float32Array | null): Float32Array {
  const bias = new Float32Array(shard.capacity).fill(MASKED);
  for (let i = 0; i < shard.filled; i++) {
    const slot = shard.heldSlot(i);
    bias[slot] = logQCorrection(logQ, shard.ids[slot]!);
  }
  return bias;
}

/** A gathered block of `rows` rows of one id and `width` values each, or an error naming it. */
function checkRows(block: SparseRowGrad, rows: number, width: number, what: string): void {
  if (block.rows.length !== rows || block.values.length !== rows * width) {
    throw new Error(`${what}: ${block.rows.length} ids and ${block.values.length} values, expected ${rows} rows of ${width}`);
  }
}

/** A 16-hex-digit digest as two int32 (it travels as a block's ids). */
function digestInts(hex: string): Int32Array {
  return Int32Array.of(Number.parseInt(hex.slice(0, 8), 16) | 0, Number.parseInt(hex.slice(8, 16), 16) | 0);
}

function hexOfDigestInts(ints: Int32Array, rank: number): string {
  if (ints.length !== 2) throw new Error(`partitioned bank: rank ${rank} sent a shard digest of ${ints.length} words, expected 2`);
  return Array.from(ints, (x) => (x >>> 0).toString(16).padStart(8, '0')).join('');
}

/** The whole bank's digest: every shard's, in rank order. */
function combinedDigest(shardDigests: readonly string[]): string {
  return createHash('sha256').update(shardDigests.join(',')).digest('hex').slice(0, 16);
}
