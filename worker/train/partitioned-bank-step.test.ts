// A partitioned bank of one member, sliced into several graph runs, against the replicated step on
// the same keys: the same loss, gradients and bounds' row statistics. (The cluster's equivalence, W
// shards and their collectives, is e2e/partitioned-bank.test.ts.)
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { defaultConfig } from '../../common/config/mod.js';
import { Rng } from '../../common/random.js';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { expectArraysClose, tempDir, unitRows } from '../../testing/test-helpers.js';
import { KeyBank, type BankMessage } from '../bank/key-bank.js';
import { KeyShard } from '../bank/key-shard.js';
import { LocalReducer } from '../collective/gradient-reducer.js';
import { OnnxDenseEngine } from '../engine/onnx/onnx-dense-engine.js';
import { ClickLogTask } from './clicklog-task.js';
import type { ClickBatch } from './clicklog-model.js';
import { createStepContext } from './step-context.js';
import { partitionedBankDense } from './partitioned-bank-step.js';

const B = 16;
/** More keys than one graph run scores (SLICE_KEYS, 65,536): the shard runs in two slices. */
const K = 70_001;

for (const [maskHits, inBatch, learnable] of [
  [true, true, false],
  [false, false, true],
] as const) {
  test(`a one-member shard of ${K} keys, scored in slices, gives the replicated step's loss, gradients and critic rows (${maskHits ? 'accidental hits masked' : 'no masks'}, ${inBatch ? 'in-batch negatives' : 'bank only'}, ${learnable ? 'learned' : 'fixed'} temperature)`, async (t) => {
    const config = defaultConfig();
    config.data = join(tempDir(t), 'clicks.tsv');
    await writeSyntheticClickLog(config.data, { queries: 800, sites: 100, seed: 6 });
    Object.assign(config, { engine: 'onnx' });
    Object.assign(config.train, { batch: B, threads: 1 });
    Object.assign(config.bank, { size: K, in_batch_negatives: inBatch, mask_accidental_hits: maskHits });
    Object.assign(config.temperature, { learnable });
    Object.assign(config.clicklog, { hash_buckets: 1 << 10, embedding_dim: 8, hidden_dim: 16, output_dim: 8 });
    const task = await ClickLogTask.load(config);
    const model = task.model;
    const engine = new OnnxDenseEngine({ threads: 1 });
    const ctx = { ...createStepContext(config, task, undefined as never), engine };
    const bank = new KeyBank(K, model.dim);
    const shard = new KeyShard(K, model.dim, { rank: 0, world: 1 });
    // A bank not yet full, its keys from several steps and sites (some of them the batch's: accidental hits).
    const rng = new Rng(3);
    for (let step = 1; step <= 3; step++) {
      const n = 25_000;
      const msg: BankMessage = {
        keys: unitRows(rng, n, model.dim),
        ids: Int32Array.from({ length: n }, () => Math.floor(rng.next() * 100)),
        step,
        producer: 0,
      };
      bank.enqueueStep([msg]);
      shard.enqueueStep([msg]);
    }
    assert.equal(shard.combinedFilled, bank.filled);
    const batch = (await task.batchAt(0, B)) as ClickBatch;
    const keys = await engine.momentumKeys(model, batch, 4);
    const positiveIds = model.positiveIds(batch);

    const want = await engine.step(model, batch, keys, positiveIds, { ...ctx, bank }, true);
    const got = await partitionedBankDense(model, batch, keys, positiveIds, 4, { ...ctx, bank: shard, engine, reducer: new LocalReducer(), rank: 0 }, true);
    expectArraysClose([got.loss], [want.loss], { atol: 1e-5, rtol: 1e-5 });
    expectArraysClose(got.grad, want.grad, { atol: 1e-5, rtol: 1e-3 });
    got.inputGrads.forEach((g, i) => expectArraysClose(g, want.inputGrads[i]!, { atol: 1e-6, rtol: 1e-3 }));
    for (const column of ['pos', 'negLogSumExp', 'negMax', 'negSoftplus'] as const) {
      expectArraysClose(got.critic![column], want.critic![column], { atol: 1e-3, rtol: 1e-5 });
    }
    assert.equal(got.critic!.negativesPerRow, bank.filled);
    assert.match(got.bankDigest!, /^[0-9a-f]{16}$/);
    assert.equal(got.shardDigest, shard.digest());
  });
}
