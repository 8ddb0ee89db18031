import test from 'node:test';
import assert from 'node:assert/strict';
import { mergeLogSumExp, type RowExpStats } from '../../../../common/log-sum-exp-merge.js';
import { Rng } from '../../../../common/random.js';
import { expectArraysClose, unitRows } from '../../../../testing/test-helpers.js';
import { MASKED, NO_HIT_ID } from '../../../bank/logit-bias.js';
import { GraphSession, type GraphFeed } from '../graph-session.js';
import { bankShardGradGraph, bankShardStatsGraph } from './bank-shard-softmax.js';

const [N, K, D] = [12, 37, 8];
const SCALE = 1 / 0.07;

/** The whole bank's log-sum-exp and Σ p·key of each row, in float64: what the shards must add up to. */
function reference(q: Float32Array, bank: Float32Array, bias: Float32Array, bankIds: Int32Array, hitIds: Int32Array) {
  const lse = new Float64Array(N);
  const weighted = new Float64Array(N * D);
  for (let i = 0; i < N; i++) {
    const logits = Array.from({ length: K }, (_, j) => {
      let dot = 0;
      for (let c = 0; c < D; c++) dot += q[i * D + c]! * bank[j * D + c]!;
      return SCALE * dot + bias[j]! + (bankIds[j] === hitIds[i] ? MASKED : 0);
    });
    const m = Math.max(...logits);
    lse[i] = m + Math.log(logits.reduce((s, l) => s + Math.exp(l - m), 0));
    logits.forEach((l, j) => {
      const p = Math.exp(l - lse[i]!);
      for (let c = 0; c < D; c++) weighted[i * D + c]! += p * bank[j * D + c]!;
    });
  }
  return { lse, weighted };
}

for (const shards of [1, 2, 3]) {
  test(`a bank cut into ${shards} shard${shards > 1 ? 's' : ''}: the merged row log-sum-exp and the summed weighted keys are the whole bank's`, async () => {
    const rng = new Rng(7 + shards);
    const q = unitRows(rng, N, D);
    const bank = unitRows(rng, K, D);
    // Ids 0..9 so that some slots are accidental hits; the last three slots are empty (masked, id −1).
    const bankIds = Int32Array.from({ length: K }, (_, j) => (j < K - 3 ? j % 10 : -1));
    const bias = Float32Array.from({ length: K }, (_, j) => (j < K - 3 ? Math.log(0.05 + (j % 10) / 10) : MASKED));
    const hitIds = Int32Array.from({ length: N }, (_, i) => (i % 4 === 3 ? NO_HIT_ID : i % 10));
    const want = reference(q, bank, bias, bankIds, hitIds);

    // Shards of unequal sizes, as K/W rarely divides: 37 → 13/12/12.
    const bounds = Array.from({ length: shards + 1 }, (_, r) => Math.round((r * K) / shards));
    const parts = bounds.slice(0, -1).map((from, r) => ({ from, to: bounds[r + 1]! }));
    const feedsOf = (from: number, to: number): Record<string, GraphFeed> => ({
      q: { data: q, dims: [N, D] },
      scale: { data: Float32Array.of(SCALE), dims: [] },
      bank: { data: bank.subarray(from * D, to * D), dims: [to - from, D] },
      bank_bias: { data: bias.subarray(from, to), dims: [1, to - from] },
      hit_ids: { data: hitIds, dims: [N, 1] },
      bank_ids: { data: bankIds.subarray(from, to), dims: [1, to - from] },
    });
    const sessions = await Promise.all(
      parts.map(async ({ from, to }) => {
        const shape = { rows: N, keys: to - from, dim: D, maskHits: true };
        const stats = bankShardStatsGraph(shape);
        const grad = bankShardGradGraph(shape);
        return { stats: await GraphSession.open(stats.model, stats.name), grad: await GraphSession.open(grad.model, grad.name) };
      }),
    );
    const stats: RowExpStats[] = [];
    for (const [r, { from, to }] of parts.entries()) {
      const out = await sessions[r]!.stats.run(feedsOf(from, to));
      stats.push({ max: out.row_max!, sumExp: out.row_sum_exp! });
    }
    const lse = mergeLogSumExp(stats);
    expectArraysClose(lse, want.lse, { atol: 1e-4, rtol: 1e-5 });

    const weighted = new Float32Array(N * D);
    for (const [r, { from, to }] of parts.entries()) {
      const out = await sessions[r]!.grad.run({ ...feedsOf(from, to), row_lse: { data: lse, dims: [N, 1] } });
      out.weighted_keys!.forEach((v, i) => (weighted[i]! += v));
    }
    expectArraysClose(weighted, want.weighted, { atol: 1e-5, rtol: 1e-4 });
    assert.ok(
      want.weighted.some((v) => Math.abs(v) > 1e-3),
      'the reference is not all zeros',
    );
    await Promise.all(sessions.flatMap((s) => [s.stats.release(), s.grad.release()]));
  });
}

test('merging log-sum-exp parts of different row counts is a RangeError', () => {
  const part = (n: number): RowExpStats => ({ max: new Float32Array(n), sumExp: new Float32Array(n) });
  assert.throws(() => mergeLogSumExp([part(3), part(4)]), RangeError);
  assert.deepEqual(Array.from(mergeLogSumExp([{ max: Float32Array.of(1), sumExp: Float32Array.of(2) }])), [Math.fround(1 + Math.log(2))]);
});
