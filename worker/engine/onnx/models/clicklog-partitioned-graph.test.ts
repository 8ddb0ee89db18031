// Partial FC's InfoNCE on one member, its bank cut into shards: the shard passes, the merged
// log-sum-exp, the head's gradients (common/partitioned-infonce.ts) and the towers' backward graph
// give the replicated training graph's loss and gradients. A cluster adds only the all-gather of the
// queries and the reduce-scatter of Σ p·key around these.
import test from 'node:test';
import { mergeLogSumExp } from '../../../../common/log-sum-exp-merge.js';
import { criticRowsOfShards, infonceHeadGradients, ownBlock, type ShardCriticStats } from '../../../../common/partitioned-infonce.js';
import { Rng } from '../../../../common/random.js';
import { expectArraysClose, unitRows } from '../../../../testing/test-helpers.js';
import { MASKED, NO_HIT_ID } from '../../../bank/logit-bias.js';
import { GraphSession, type GraphFeed } from '../graph-session.js';
import { bankShardGradGraph, bankShardStatsGraph } from '../losses/bank-shard-softmax.js';
import { CRITIC_ROW_COLUMNS } from '../losses/critic-rows.js';
import { clicklogParams, clicklogPartitionedGraph, clicklogTrainingGraph } from './clicklog-training-graph.js';
import { towerEmbedGraph } from './embed-graph.js';

const [B, E, H, D, K] = [6, 5, 7, 4, 23];

async function run(graph: { model: Uint8Array; name?: string }, feeds: Record<string, GraphFeed>) {
  const session = await GraphSession.open(graph.model, graph.name ?? 'training graph');
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

for (const [shards, learnable, inBatch] of [
  [2, false, false],
  [3, true, false],
  [3, false, true],
] as const) {
  test(`${shards} bank shards, ${learnable ? 'learned' : 'fixed'} temperature${inBatch ? ', in-batch negatives' : ''}: the partitioned step's loss and gradients are the replicated graph's`, async () => {
    const rng = new Rng(shards * 10 + (learnable ? 1 : 0) + (inBatch ? 2 : 0));
    const shape = { batch: B, embeddingDim: E, hiddenDim: H, outputDim: D, learnableTemperature: learnable };
    const params: Record<string, GraphFeed> = {};
    for (const [name, dims] of clicklogParams(shape)) {
      const size = dims.reduce((a, b) => a * b, 1);
      params[name] = { data: Float32Array.from({ length: size }, () => (name === 'logit_scale' ? Math.log(1 / 0.1) : (rng.next() * 2 - 1) * 0.5)), dims };
    }
    const scale = learnable ? Math.fround(Math.exp((params.logit_scale!.data as Float32Array)[0]!)) : 1 / 0.1;
    const pooledQ = Float32Array.from({ length: B * E }, () => rng.next() * 2 - 1);
    const pooledS = Float32Array.from({ length: B * E }, () => rng.next() * 2 - 1);
    const keys = unitRows(rng, B, D);
    const bank = unitRows(rng, K, D);
    const positiveIds = Int32Array.from({ length: B }, (_, i) => i % 5);
    const bankIds = Int32Array.from({ length: K }, (_, j) => (j < K - 2 ? j % 7 : -1));
    const bankBias = Float32Array.from({ length: K }, (_, j) => (j < K - 2 ? -Math.log(0.1 + (j % 7) / 10) : MASKED));
    const positiveBias = Float32Array.from(positiveIds, (id) => -Math.log(0.1 + id / 10));
    const hitIds = Int32Array.from(positiveIds, (id, i) => (i === 0 ? NO_HIT_ID : id));
    const batchBias = Float32Array.from({ length: B * B }, (_, x) => {
      const [i, j] = [Math.floor(x / B), x % B];
      return i === j ? positiveBias[i]! : inBatch && positiveIds[j] !== hitIds[i] ? positiveBias[j]! : MASKED;
    });
    const siteMask = Float32Array.from({ length: B * B }, (_, x) => (x % 4 === 1 ? MASKED : 0));
    const towerFeeds: Record<string, GraphFeed> = {
      pooled_q: { data: pooledQ, dims: [B, E] },
      pooled_s: { data: pooledS, dims: [B, E] },
      keys: { data: keys, dims: [B, D] },
      site_mask: { data: siteMask, dims: [B, B] },
      ...(learnable ? {} : { scale: { data: Float32Array.of(scale), dims: [] } }),
      ...params,
    };

    const head = { objective: 'infonce', bank: K, layout: 'queue', maskHits: true, logged: true } as const;
    const reference = clicklogTrainingGraph({ ...shape, head });
    const want = await run(reference, {
      ...towerFeeds,
      bank: { data: bank, dims: [K, D] },
      positive_bias: { data: positiveBias, dims: [B, 1] },
      bank_bias: { data: bankBias, dims: [1, K] },
      batch_bias: { data: batchBias, dims: [B, B] },
      hit_ids: { data: hitIds, dims: [B, 1] },
      bank_ids: { data: bankIds, dims: [1, K] },
    });

    // The query tower's forward, then the head across the shards.
    const embed = towerEmbedGraph('q', B, [E, H, D]);
    const q = (await run(embed, { pooled: { data: pooledQ, dims: [B, E] }, ...params }))[embed.output]!;
    const cuts = Array.from({ length: shards + 1 }, (_, r) => Math.round((r * K) / shards));
    const shardFeeds = (r: number): Record<string, GraphFeed> => {
      const [from, to] = [cuts[r]!, cuts[r + 1]!];
      return {
        q: { data: q, dims: [B, D] },
        scale: { data: Float32Array.of(scale), dims: [] },
        bank: { data: bank.subarray(from * D, to * D), dims: [to - from, D] },
        bank_bias: { data: bankBias.subarray(from, to), dims: [1, to - from] },
        hit_ids: { data: hitIds, dims: [B, 1] },
        bank_ids: { data: bankIds.subarray(from, to), dims: [1, to - from] },
      };
    };
    const shardShape = (r: number) => ({ rows: B, keys: cuts[r + 1]! - cuts[r]!, dim: D, maskHits: true, logged: true });
    const own = ownBlock({ q, kpos: keys, batchBias, scale, dim: D });
    const stats = [own.stats];
    const critic: ShardCriticStats[] = [];
    for (let r = 0; r < shards; r++) {
      const out = await run(bankShardStatsGraph(shardShape(r)), shardFeeds(r));
      stats.push({ max: out.row_max!, sumExp: out.row_sum_exp! });
      critic.push({ max: out.critic_max!, sumExp: out.critic_sum_exp!, softplus: out.critic_softplus! });
    }
    // The bounds' row statistics over the whole bank: the replicated graph's B×4 critic rows, column by column.
    const rows = criticRowsOfShards(own.positive, critic, K - 2);
    CRITIC_ROW_COLUMNS.forEach((column, c) => {
      const wantColumn = Float32Array.from({ length: B }, (_, i) => want.critic_rows![i * CRITIC_ROW_COLUMNS.length + c]!);
      expectArraysClose(rows[column], wantColumn, { atol: 1e-4, rtol: 1e-5 });
    });
    const lse = mergeLogSumExp(stats);
    const weighted = new Float32Array(B * D);
    for (let r = 0; r < shards; r++) {
      const out = await run(bankShardGradGraph(shardShape(r)), { ...shardFeeds(r), row_lse: { data: lse, dims: [B, 1] } });
      out.weighted_keys!.forEach((v, i) => (weighted[i]! += v));
    }
    const grads = infonceHeadGradients(own, lse, weighted);
    expectArraysClose([grads.loss], want.loss!, { atol: 1e-5, rtol: 1e-5 });

    const got = await run(clicklogPartitionedGraph(shape), {
      ...towerFeeds,
      head_grad_q: { data: grads.q, dims: [B, D] },
      ...(learnable ? { head_grad_scale: { data: Float32Array.of(grads.scale), dims: [] } } : {}),
    });
    for (const name of [...clicklogParams(shape).map(([n]) => n), 'pooled_q', 'pooled_s']) {
      expectArraysClose(got[`grad.${name}`]!, want[`grad.${name}`]!, { atol: 1e-5, rtol: 1e-4 });
    }
  });
}
