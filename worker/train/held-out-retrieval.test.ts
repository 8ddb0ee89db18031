import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { initBackend } from '../../common/backend.js';
import { defaultConfig } from '../../common/config/mod.js';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { tempDir } from '../../testing/test-helpers.js';
import { EVALUATING_ALONE, EvaluationGroupError, sumCounts, type EvaluationGroup } from '../eval/evaluation-group.js';
import { loadTask } from './load-task.js';
import { sampleOf } from './held-out-retrieval.js';

/** `world` members of one process summing with each other, as members summing around a ring do. */
function groupsOf(world: number): EvaluationGroup[] {
  let waiting: { values: Float32Array; resolve: (sum: Float32Array) => void }[] = [];
  return Array.from({ length: world }, (_, rank) => ({
    rank,
    world,
    sum: (values: Float32Array) =>
      new Promise<Float32Array>((resolve) => {
        waiting[rank] = { values: Float32Array.from(values), resolve };
        if (waiting.filter(Boolean).length < world) return;
        const total = new Float32Array(values.length);
        // Summed in rank order, as float32, like the ring's partial sums.
        for (const w of waiting) for (let i = 0; i < total.length; i++) total[i] = Math.fround(total[i]! + w.values[i]!);
        for (const w of waiting) w.resolve(Float32Array.from(total));
        waiting = [];
      }),
  }));
}

test('held-out retrieval shared by 2 or 3 members gives the figures of one member alone; a site sample is labelled', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(log, { queries: 600, sites: 90, seed: 4 });
  const config = defaultConfig();
  await initBackend(config.backend);
  Object.assign(config, { data: log });
  Object.assign(config.clicklog, { hash_buckets: 1 << 10, embedding_dim: 8, hidden_dim: 16, output_dim: 8, holdout: 0.2 });
  for (const logq of [true, false]) {
    config.clicklog.logq_correction = logq;
    const task = await loadTask(config);
    const alone = await task.evaluate(3, 0.1, EVALUATING_ALONE);
    assert.ok((alone.held_out_pairs as number) > 50 && alone.sites === 90 && alone.sampled_sites === undefined, JSON.stringify(alone));
    for (const world of [2, 3]) {
      const shared = await Promise.all(groupsOf(world).map((g) => task.evaluate(3, 0.1, g)));
      for (const figures of shared) assert.deepEqual(figures, alone, `${world} members`);
    }
  }

  config.eval.sites_sample = 30;
  const task = await loadTask(config);
  const sampled = await task.evaluate(3, 0.1, EVALUATING_ALONE);
  assert.equal(sampled.sampled_sites, 30);
  for (const key of ['recall_at_1', 'recall_at_10', 'mrr'] as const) assert.ok(sampled[key]! >= 0 && sampled[key]! <= 1, `${key} ${sampled[key]}`);
  assert.deepEqual(await Promise.all(groupsOf(2).map((g) => task.evaluate(3, 0.1, g))).then((f) => f[1]), sampled, 'every member ranks the same sample');
  // A sample as large as the vocabulary is no sample.
  config.eval.sites_sample = 90;
  assert.equal((await (await loadTask(config)).evaluate(3, 0.1, EVALUATING_ALONE)).sampled_sites, undefined);
});

test('a site sample is k distinct sites, ascending, the same for a seed', () => {
  const a = sampleOf(1000, 50, 7);
  assert.equal(new Set(a).size, 50);
  assert.ok(a.every((id, i) => id >= 0 && id < 1000 && (i === 0 || id > a[i - 1]!)));
  assert.deepEqual(sampleOf(1000, 50, 7), a);
  assert.notDeepEqual(sampleOf(1000, 50, 8), a);
});

test('counts are summed exactly past float32 integers, and a lost member is an EvaluationGroupError', async () => {
  const counts = [Float64Array.from([2 ** 24 + 1, 3, 2 ** 35]), Float64Array.from([2 ** 24 + 1, 0, 4095])];
  const groups = groupsOf(2);
  const sums = await Promise.all(groups.map((g, r) => sumCounts(g, counts[r]!)));
  for (const s of sums) assert.deepEqual(Array.from(s), [2 ** 25 + 2, 3, 2 ** 35 + 4095]);
  const lost: EvaluationGroup = { rank: 0, world: 2, sum: () => Promise.reject(new EvaluationGroupError('rank 1 left')) };
  await assert.rejects(sumCounts(lost, counts[0]!), EvaluationGroupError);
});
