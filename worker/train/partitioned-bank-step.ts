import { createHash } from 'node:crypto';
import { concatArrays } from '../../common/concat-arrays.js';
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
  const queries = await reducer.allGatherBlocks({ rows: rowBias.hitIds, values: q }, step);
  const counts = queries.map((block, r) => checkedRows(block, d, `queries from rank ${r}`));
  const offsets = counts.map((_, r) => counts.slice(0, r).reduce((s, n) => s + n, 0));
  const n = counts.reduce((s, c) => s + c, 0);
  if (counts[ctx.rank] !== b) throw new Error(`partitioned bank step ${step}: rank ${ctx.rank} gathered ${counts[ctx.rank]} of its own ${b} rows`);
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
  const perBlock: BankShardStats[] = [];
  for (const x of queries) {
    const parts: BankShardStats[] = [];
    for (const input of inputs(x)) parts.push(await engine.bankShardStats(input, logged));
    perBlock.push(combineSlices(parts, logged));
  }
  const joined = (pick: (s: BankShardStats) => Float32Array) => concatArrays((k) => new Float32Array(k), perBlock.map(pick));
  const stats = {
    max: joined((s) => s.max),
    sumExp: joined((s) => s.sumExp),
    critic: logged ? { max: joined((s) => s.critic!.max), sumExp: joined((s) => s.critic!.sumExp), softplus: joined((s) => s.critic!.softplus) } : undefined,
  };
  const own = ownBlock({ q, kpos: keys, batchBias: rowBias.batch, scale, dim: d });

  // Every member's statistics: its shard's over all n rows (critic's too when logged), its own rows' in-batch block.
  const columns = logged ? 5 : 2;
  const sent = new Float32Array(columns * n + 2 * b);
  [stats.max, stats.sumExp, ...(logged ? [stats.critic!.max, stats.critic!.sumExp, stats.critic!.softplus] : [])].forEach((c, i) => sent.set(c, i * n));
  sent.set(own.stats.max, columns * n);
  sent.set(own.stats.sumExp, columns * n + b);
  const statBlocks = await reducer.allGatherBlocks({ rows: logged ? digestInts(shard.digest()) : new Int32Array(0), values: sent }, step);
  statBlocks.forEach((block, r) => {
    if (block.values.length !== columns * n + 2 * counts[r]!)
      throw new Error(`partitioned bank step ${step}: rank ${r} sent ${block.values.length} statistics, expected ${columns * n + 2 * counts[r]!}`);
  });
  const column = (r: number, c: number) => statBlocks[r]!.values.subarray(c * n, (c + 1) * n);
  // The in-batch part of every row, from the member that owns the row.
  const inBatch: RowExpStats = { max: new Float32Array(n), sumExp: new Float32Array(n) };
  statBlocks.forEach((block, r) => {
    const tail = block.values.subarray(columns * n);
    inBatch.max.set(tail.subarray(0, counts[r]!), offsets[r]!);
    inBatch.sumExp.set(tail.subarray(counts[r]!), offsets[r]!);
  });
  const lse = mergeLogSumExp([inBatch, ...statBlocks.map((_, r) => ({ max: column(r, 0), sumExp: column(r, 1) }))]);

  const mine = (a: Float32Array, width: number) => a.subarray(offsets[ctx.rank]! * width, (offsets[ctx.rank]! + b) * width);
  // The shard's part of Σ p·key for every row, summed over the shards into each member's own rows.
  const blocks: Float32Array[] = [];
  for (const [r, x] of queries.entries()) {
    const rowLse = lse.subarray(offsets[r]!, offsets[r]! + counts[r]!);
    const sum = new Float32Array(counts[r]! * d);
    for (const input of inputs(x)) {
      const part = await engine.bankShardWeightedKeys(input, rowLse);
      for (let i = 0; i < sum.length; i++) sum[i]! += part[i]!;
    }
    blocks.push(sum);
  }
  const weighted = await ownRowsSum(
    reducer,
    concatArrays((k) => new Float32Array(k), blocks),
    counts,
    d,
    ctx.rank,
    step,
  );
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
    result.shardDigest = shard.digest();
    result.bankDigest = combinedDigest(statBlocks.map((block, r) => hexOfDigestInts(block.rows, r)));
  }
  return result;
}

/**
 * Σ over the members of `rows` (every member's n×d, the gathered rows' order), for this member's own
 * rows only: a reduce-scatter, with the rows laid out so that the segment a member completes is its
 * own (segment s holds rank s − 1's rows). Members' row counts differ only when batches do, and then
 * the sum goes the long way (all-reduce, then this member's slice).
 */
async function ownRowsSum(
  reducer: GradientReducer,
  rows: Float32Array,
  counts: readonly number[],
  d: number,
  rank: number,
  step: number,
): Promise<Float32Array> {
  const w = counts.length;
  const b = counts[rank]!;
  if (counts.some((c) => c !== b)) {
    const offset = counts.slice(0, rank).reduce((s, c) => s + c, 0);
    return (await reducer.allReduceSum(rows, step)).subarray(offset * d, (offset + b) * d);
  }
  const laidOut = new Float32Array(rows.length);
  for (let s = 0; s < w; s++) laidOut.set(rows.subarray(((s - 1 + w) % w) * b * d, (((s - 1 + w) % w) + 1) * b * d), s * b * d);
  return reducer.reduceScatterSum(laidOut, step);
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
  for (const slot of shard.slotsOldestFirst()) bias[slot] = logQCorrection(logQ, shard.ids[slot]!);
  return bias;
}

/** Rows of a gathered block of one id and `width` values a row, or an error naming it. */
function checkedRows(block: SparseRowGrad, width: number, what: string): number {
  const rows = block.rows.length;
  if (block.values.length !== rows * width) throw new Error(`partitioned bank: ${what}: ${block.values.length} values for ${rows} rows of ${width}`);
  return rows;
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
