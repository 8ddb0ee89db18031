// NWJ, DV, MINE and JSD as ONNX graphs against their tfjs losses (common/estimators-losses.ts,
// closed-form gradients): the same value and the same gradient with respect to the scores, with
// masked negatives (empty bank slots) left out of both.
import assert from 'node:assert/strict';
import test from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { MineLoss, dvLoss, jsdLoss, nwjLoss } from '../../../../common/estimators-losses.js';
import { Rng } from '../../../../common/random.js';
import { expectArraysClose, useTestBackend } from '../../../../testing/test-helpers.js';
import { MASKED } from '../../../bank/logit-bias.js';
import { gradients } from '../autodiff.js';
import { GraphBuilder } from '../graph-builder.js';
import { encodeModel } from '../onnx-model.js';
import { type ScoreObjective, scoreLoss } from './score-losses.js';

const ROWS = 16;
/** Negative columns of the graph; the last MASKED_COLS of them are empty slots. */
const COLS = 64;
const MASKED_COLS = 14;
const EMA = 0.35;

/** The reference loss on the unmasked queue-layout matrix; MINE with its moving average at EMA, or unset. */
function reference(objective: ScoreObjective, withEma: boolean): (s: tf.Tensor2D) => tf.Scalar {
  switch (objective) {
    case 'nwj':
      return (s) => nwjLoss(s, 'first');
    case 'dv':
      return (s) => dvLoss(s, 'first');
    case 'jsd':
      return (s) => jsdLoss(s, 'first');
    case 'mine':
      return (s) => new MineLoss(withEma ? { ema: EMA } : {}).loss(s, 'first');
  }
}

const cases: [ScoreObjective, boolean][] = [
  ['nwj', false],
  ['dv', false],
  ['jsd', false],
  ['mine', false],
  ['mine', true],
];
for (const [objective, withEma] of cases) {
  test(`${objective}${objective === 'mine' ? (withEma ? ' with its moving average' : ', first batch') : ''}: the ONNX loss and its gradient equal the tfjs loss, masked negatives left out`, async () => {
    await useTestBackend();
    const rng = new Rng(3);
    const live = COLS - MASKED_COLS;
    // Critic scores of a trained-ish critic: positives higher than negatives, up to a few nats.
    const scores = Float32Array.from({ length: ROWS * (live + 1) }, (_, i) => (i % (live + 1) === 0 ? 3 : 0) + 2 * rng.normal());
    const positive = Float32Array.from({ length: ROWS }, (_, i) => scores[i * (live + 1)]!);
    const negatives = Float32Array.from({ length: ROWS * COLS }, (_, x) => {
      const [i, j] = [Math.floor(x / COLS), x % COLS];
      return j < live ? scores[i * (live + 1) + 1 + j]! : MASKED;
    });

    const g = new GraphBuilder(`score-${objective}`);
    const pos = g.input('positive', [ROWS, 1]);
    const neg = g.input('negatives', [ROWS, COLS]);
    const mine = objective === 'mine' ? { logDenominator: g.input('log_denominator', []), useBatch: g.input('use_batch', []) } : undefined;
    const r = scoreLoss(g, objective, { positive: pos, negatives: neg, negCount: g.input('neg_count', []), ...(mine ? { mine } : {}) });
    const [dPos, dNeg] = gradients(g, r.trained, [pos, neg]);
    for (const [name, v] of [
      ['loss', r.loss],
      ['d_pos', dPos!],
      ['d_neg', dNeg!],
      ['neg_log_mean', r.negLogMean],
    ] as const)
      g.namedOutput(name, v);
    const session = await ort.InferenceSession.create(encodeModel(g), { intraOpNumThreads: 1 });
    const f32 = (data: ArrayLike<number>, dims: number[]) => new ort.Tensor('float32', Float32Array.from(data), dims);
    const out = await session.run({
      positive: f32(positive, [ROWS, 1]),
      negatives: f32(negatives, [ROWS, COLS]),
      neg_count: f32([ROWS * live], []),
      ...(mine ? { log_denominator: f32([Math.log(EMA)], []), use_batch: f32([withEma ? 0 : 1], []) } : {}),
    });
    await session.release();
    const read = (name: string) => out[name]!.data as Float32Array;

    const st = tf.tensor2d(scores, [ROWS, live + 1]);
    const f = reference(objective, withEma);
    const expected = f(st);
    const [expectedGrad] = tf.grads((x: tf.Tensor) => f(x as tf.Tensor2D))([st]);
    const eg = expectedGrad!.dataSync();
    expectArraysClose(read('loss'), expected.dataSync(), { atol: 1e-5, rtol: 1e-5 });
    expectArraysClose(
      read('d_pos'),
      Float32Array.from({ length: ROWS }, (_, i) => eg[i * (live + 1)]!),
      { atol: 1e-7, rtol: 1e-4 },
    );
    const dn = read('d_neg');
    expectArraysClose(
      Float32Array.from({ length: ROWS * live }, (_, x) => dn[Math.floor(x / live) * COLS + (x % live)]!),
      Float32Array.from({ length: ROWS * live }, (_, x) => eg[Math.floor(x / live) * (live + 1) + 1 + (x % live)]!),
      { atol: 1e-7, rtol: 1e-4 },
    );
    for (let x = 0; x < ROWS * COLS; x++) if (x % COLS >= live) assert.equal(dn[x], 0, `masked negative ${x} takes no gradient`);
    // The batch's log mean_neg e^s, which MINE's moving average takes in.
    let sum = 0;
    for (let x = 0; x < ROWS * live; x++) sum += Math.exp(scores[Math.floor(x / live) * (live + 1) + 1 + (x % live)]!);
    expectArraysClose(read('neg_log_mean'), [Math.log(sum / (ROWS * live))], { atol: 1e-5, rtol: 1e-5 });
    tf.dispose([st, expected, expectedGrad!]);
  });
}
