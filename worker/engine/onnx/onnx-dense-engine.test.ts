import { randomBytes } from 'node:crypto';
// The onnx engine beside the tfjs engine through several training steps: before every step of a
// tfjs run, both engines compute the step's dense part from the same state, and agree.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { defaultConfig } from '../../../common/config/mod.js';
import { writeSyntheticClickLog } from '../../../common/synthetic-clicklog.js';
import { accuracyOfRows, boundsOfRows, type CriticRows, ESTIMATORS } from '../../../common/estimators.js';
import { expectArraysClose, tempDir, useTestBackend } from '../../../testing/test-helpers.js';
import { openBankTransport } from '../../bank/open-bank-transport.js';
import { replicatedBank } from '../../bank/member-bank.js';
import { FASHION_MNIST_DIR } from '../../data/idx-reader.js';
import { ClickLogTask } from '../../train/clicklog-task.js';
import { ImageTask } from '../../train/image-task.js';
import { contrastiveStep } from '../../train/contrastive-step.js';
import { createStepContext } from '../../train/step-context.js';
import { TfjsDenseEngine } from '../../train/tfjs-dense-engine.js';
import { OnnxDenseEngine } from './onnx-dense-engine.js';

const B = 16;

/** The click-log task of a small synthetic log, or the image task on Fashion-MNIST (Debian's dataset-fashion-mnist), with small models. */
async function smallTask(
  kind: 'clicklog' | 'images',
  dir: string,
  learnable: boolean,
): Promise<{ task: ClickLogTask | ImageTask; config: ReturnType<typeof defaultConfig> }> {
  const config = defaultConfig();
  // The run between comparisons goes on on the reference engine.
  config.engine = 'tfjs';
  Object.assign(config.train, { batch: B });
  Object.assign(config.bank, { size: 40 });
  Object.assign(config.temperature, { learnable });
  if (kind === 'images') {
    config.data = FASHION_MNIST_DIR;
    Object.assign(config.images, { channels: 3, hidden_dim: 12, output_dim: 6, max_train: 256 });
    return { task: await ImageTask.load(config), config };
  }
  config.data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(config.data, { queries: 800, sites: 100, seed: 6 });
  Object.assign(config.clicklog, { hash_buckets: 1 << 10, embedding_dim: 8, hidden_dim: 16, output_dim: 8 });
  return { task: await ClickLogTask.load(config), config };
}

/** The largest magnitude in `values`, at least 1. */
function scaleOf(values: Float32Array): number {
  let m = 1;
  for (const x of values) m = Math.max(m, Math.abs(x));
  return m;
}

/** The bounds and accuracy a critic's row statistics give, for comparing engines. */
function criticFigures(rows: CriticRows | undefined): number[] | undefined {
  return rows === undefined ? undefined : [...Object.values(boundsOfRows(rows)), accuracyOfRows(rows)];
}

for (const kind of ['clicklog', 'images'] as const) {
  for (const objective of ESTIMATORS) {
    for (const learnable of objective === 'infonce' ? [false, true] : [false]) {
      test(`${kind}, ${objective}, ${learnable ? 'learnable' : 'fixed'} temperature: over 6 steps the onnx engine gives the tfjs engine's keys, losses, gradients and bounds`, async (t) => {
        await useTestBackend();
        const { task, config } = await smallTask(kind, tempDir(t), learnable);
        Object.assign(config.train, { objective });
        const model = task.model as ClickLogTask['model'];
        const transport = await openBankTransport(config, model, { job: 'test', runId: 'r', bankKey: randomBytes(32), clientName: 't' });
        t.after(() => transport.close());
        const stepCtx = createStepContext(config, task, transport);
        const ctx = { ...stepCtx, bank: replicatedBank(stepCtx.bank) };
        const tfjs = new TfjsDenseEngine();
        const onnx = new OnnxDenseEngine({ threads: 1 });
        let compared = 0;
        let nonZero = 0;
        for (let step = 1; step <= 6; step++) {
          const batch = task.batchAt((step - 1) * B, B) as never;
          const positiveIds = model.positiveIds(batch);
          const keys = await tfjs.momentumKeys(model, batch, step);
          expectArraysClose(await onnx.momentumKeys(model, batch, step), keys, { atol: 1e-6, rtol: 1e-5 });
          const wantCritic = ctx.bank.filled > 0;
          // Each engine's step moves MINE's moving average once, from the same value.
          const mineBefore = ctx.mine.ema;
          const a = await tfjs.step(model, batch, keys, positiveIds, ctx, wantCritic);
          const mineAfter = ctx.mine.ema;
          ctx.mine.restore(mineBefore);
          const b = await onnx.step(model, batch, keys, positiveIds, ctx, wantCritic);
          if (objective === 'mine') expectArraysClose([ctx.mine.ema!], [mineAfter!], { atol: 1e-6, rtol: 1e-5 });
          ctx.mine.restore(mineBefore);
          expectArraysClose([b.loss], [a.loss], { atol: 1e-5, rtol: 1e-5 });
          expectArraysClose([b.scale], [a.scale], { atol: 1e-4, rtol: 1e-6 });
          // float32 tolerance on the gradient's own scale: NWJ's e^s at τ = 0.07 makes some entries 10⁵.
          expectArraysClose(b.grad, a.grad, { atol: 1e-5 * scaleOf(a.grad), rtol: 2e-4 });
          if (a.grad.some((x) => x !== 0)) nonZero++;
          assert.equal(b.inputGrads.length, a.inputGrads.length);
          for (const [i, g] of a.inputGrads.entries()) expectArraysClose(b.inputGrads[i]!, g, { atol: 1e-6 * scaleOf(g), rtol: 2e-4 });
          assert.equal(b.critic === undefined, a.critic === undefined);
          if (a.critic !== undefined) {
            expectArraysClose(criticFigures(b.critic)!, criticFigures(a.critic)!, { atol: 1e-4, rtol: 1e-5 });
            compared++;
          }
          // The run itself goes on on the tfjs engine: both engines see the same state at every step.
          await contrastiveStep(model, batch, step, ctx, false);
        }
        assert.ok(compared >= 4, `bounds compared on ${compared} steps, with the bank filling up and then full`);
        assert.ok(nonZero >= 5, `the reference gradient is not all zeros on ${nonZero} of 6 steps`);
      });
    }
  }
}
