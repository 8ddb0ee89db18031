import assert from 'node:assert/strict';
import test from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { BOUND_NAMES, ESTIMATORS, boundValues, type BoundName, type ScoreLayout } from './estimators.js';
import { MineLoss, dvLoss, estimatorLoss, infonceLoss, jsdLoss, nwjLoss } from './estimators-losses.js';
import { Rng } from './random.js';
import { expectArraysClose, useTestBackend } from '../testing/test-helpers.js';

const LOSSES: Record<BoundName, (s: tf.Tensor2D, layout: ScoreLayout) => tf.Scalar> = {
  infonce: infonceLoss,
  nwj: nwjLoss,
  dv: dvLoss,
  jsd: jsdLoss,
};

/** A float32 score matrix: the tensor and the very same numbers for the JS values. */
interface Case {
  readonly values: Float32Array;
  readonly rows: number;
  readonly cols: number;
  readonly layout: ScoreLayout;
}

function randomCase(rng: Rng, rows: number, cols: number, layout: ScoreLayout, scale = 1.5): Case {
  return { values: Float32Array.from({ length: rows * cols }, () => scale * rng.normal()), rows, cols, layout };
}

function tensor(c: Case): tf.Tensor2D {
  return tf.tensor2d(c.values, [c.rows, c.cols]);
}

/** The JS bound on the case's scores, optionally with entry k moved by h (in float64). */
function jsBound(c: Case, name: BoundName, k = -1, h = 0): number {
  const scores = Float64Array.from(c.values);
  if (k >= 0) scores[k]! += h;
  return boundValues({ scores, rows: c.rows, cols: c.cols, layout: c.layout })[name];
}

/** d(−bound)/ds by central differences of the float64 JS value. */
function finiteDifferenceGrad(c: Case, name: BoundName, h = 1e-4): number[] {
  return Array.from(c.values, (_, k) => -(jsBound(c, name, k, h) - jsBound(c, name, k, -h)) / (2 * h));
}

/** The loss value and its gradient with respect to the scores. */
function valueAndGrad(loss: (s: tf.Tensor2D) => tf.Scalar, c: Case): { value: number; grad: Float32Array } {
  const { value, grad } = tf.valueAndGrad((s: tf.Tensor) => loss(s as tf.Tensor2D))(tensor(c));
  return { value: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array };
}

const CASE_SHAPES: [number, number, ScoreLayout][] = [
  [4, 4, 'diagonal'],
  [3, 6, 'first'],
];

test('each loss is −(its bound) on both layouts, including masked negatives and huge positives', async () => {
  await useTestBackend();
  const rng = new Rng(21);
  const cases = [
    randomCase(rng, 6, 6, 'diagonal'),
    randomCase(rng, 5, 17, 'first', 3),
    // A −∞ (masked) negative in each layout, and positives whose e^s overflows float32.
    { values: Float32Array.from([100, -Infinity, 1, 0.2, 95, -1, 0.3, 0.7, 90]), rows: 3, cols: 3, layout: 'diagonal' as const },
    { values: Float32Array.from([100, -Infinity, 1, 95, 0.2, -1]), rows: 2, cols: 3, layout: 'first' as const },
  ];
  for (const c of cases) {
    for (const name of BOUND_NAMES) {
      const loss = LOSSES[name](tensor(c), c.layout).dataSync()[0]!;
      expectArraysClose([loss], [-jsBound(c, name)], { atol: 2e-5, rtol: 1e-5 });
    }
  }
});

test('each loss gradient matches central differences of the JS bound', async () => {
  await useTestBackend();
  const rng = new Rng(22);
  for (const [rows, cols, layout] of CASE_SHAPES) {
    const c = randomCase(rng, rows, cols, layout);
    for (const name of BOUND_NAMES) {
      const { grad } = valueAndGrad((s) => LOSSES[name](s, layout), c);
      assert.doesNotThrow(() => expectArraysClose(grad, finiteDifferenceGrad(c, name), { atol: 2e-5, rtol: 1e-3 }), `${name} ${layout}`);
    }
  }
});

test('gradients stay finite with a masked negative and float32-overflowing positives', async () => {
  await useTestBackend();
  const c: Case = { values: Float32Array.from([100, -Infinity, 1, 0.2, 95, -1, 0.3, 0.7, 90]), rows: 3, cols: 3, layout: 'diagonal' };
  for (const name of ['infonce', 'dv', 'jsd'] as const) {
    const { grad } = valueAndGrad((s) => LOSSES[name](s, c.layout), c);
    assert.ok(grad.every(Number.isFinite), `${name}: ${grad}`);
    assert.equal(grad[1], 0, `${name}: a masked negative gets no gradient`);
  }
});

test('MINE: value is −DV; first step has DV gradient, later steps divide by the moving average', async () => {
  await useTestBackend();
  const rng = new Rng(23);
  for (const [rows, cols, layout] of CASE_SHAPES) {
    const alpha = 0.1;
    const mine = new MineLoss({ alpha });
    assert.equal(mine.ema, undefined);
    const negMeanExp = (c: Case) => {
      let sum = 0;
      c.values.forEach((v, k) => {
        const [i, j] = [Math.floor(k / cols), k % cols];
        if (j !== (layout === 'diagonal' ? i : 0)) sum += Math.exp(v);
      });
      return sum / (rows * (cols - 1));
    };

    const first = randomCase(rng, rows, cols, layout);
    const m1 = valueAndGrad((s) => mine.loss(s, layout), first);
    const dv1 = valueAndGrad((s) => dvLoss(s, layout), first);
    expectArraysClose([m1.value], [-jsBound(first, 'dv')], { atol: 1e-5, rtol: 1e-5 });
    expectArraysClose(m1.grad, dv1.grad, { atol: 1e-6, rtol: 1e-4 });
    const ema1 = negMeanExp(first);
    expectArraysClose([mine.ema!], [ema1], { atol: 0, rtol: 1e-5 });

    // A batch with a different denominator: positives −1/rows, a negative e^s / (count · ema before this step).
    const second = randomCase(rng, rows, cols, layout, 2.5);
    const m2 = valueAndGrad((s) => mine.loss(s, layout), second);
    expectArraysClose([m2.value], [-jsBound(second, 'dv')], { atol: 1e-5, rtol: 1e-5 });
    const expected = Array.from(second.values, (v, k) => {
      const [i, j] = [Math.floor(k / cols), k % cols];
      return j === (layout === 'diagonal' ? i : 0) ? -1 / rows : Math.exp(v) / (rows * (cols - 1) * ema1);
    });
    expectArraysClose(m2.grad, expected, { atol: 1e-6, rtol: 1e-4 });
    const dv2 = valueAndGrad((s) => dvLoss(s, layout), second);
    const gap = Math.max(...Array.from(m2.grad, (g, k) => Math.abs(g - dv2.grad[k]!)));
    assert.ok(gap > 1e-2, `MINE's gradient should differ from DV's here (max gap ${gap})`);
    expectArraysClose([mine.ema!], [(1 - alpha) * ema1 + alpha * negMeanExp(second)], { atol: 0, rtol: 1e-5 });
  }
});

test('MINE state: restored from a checkpoint, reset, validated, and kept from bad batches', async () => {
  await useTestBackend();
  const c = randomCase(new Rng(24), 3, 5, 'first');
  const restored = new MineLoss({ ema: 4 });
  const { grad } = valueAndGrad((s) => restored.loss(s, 'first'), c);
  // Column 1 is a negative: e^s / (count · 4).
  expectArraysClose([grad[1]!], [Math.exp(c.values[1]!) / (3 * 4 * 4)], { atol: 1e-7, rtol: 1e-5 });
  assert.equal(restored.alpha, 0.01);

  const mine = new MineLoss();
  mine.restore(2.5);
  assert.equal(mine.ema, 2.5);
  mine
    .loss(
      tf.tensor2d([
        [NaN, 1],
        [0, NaN],
      ]),
      'first',
    )
    .dispose();
  assert.equal(mine.ema, 2.5, 'a NaN batch leaves the average alone');
  mine.restore(undefined);
  assert.equal(mine.ema, undefined);

  assert.throws(() => new MineLoss({ alpha: 0 }), /alpha/);
  assert.throws(() => new MineLoss({ alpha: 1.5 }), /alpha/);
  assert.throws(() => mine.restore(-1), /positive finite/);
  assert.throws(() => mine.restore(Infinity), /positive finite/);
});

test('estimatorLoss dispatches by name; MINE needs its state', async () => {
  await useTestBackend();
  const c = randomCase(new Rng(25), 4, 4, 'diagonal');
  for (const name of ESTIMATORS) {
    const value = estimatorLoss(name, tensor(c), c.layout, new MineLoss()).dataSync()[0]!;
    const expected = -jsBound(c, name === 'mine' ? 'dv' : name);
    expectArraysClose([value], [expected], { atol: 1e-5, rtol: 1e-5 });
  }
  assert.throws(() => estimatorLoss('mine', tensor(c), c.layout), /MineLoss/);
});

test('losses reject bad input and leak no tensors', async () => {
  await useTestBackend();
  assert.throws(() => infonceLoss(tf.zeros([3, 4]) as tf.Tensor2D, 'diagonal'), /square/);
  assert.throws(() => dvLoss(tf.zeros([3, 1]) as tf.Tensor2D, 'first'), /2 columns/);
  assert.throws(() => jsdLoss(tf.zeros([2, 2], 'int32') as tf.Tensor2D, 'first'), /float32/);

  const c = randomCase(new Rng(26), 8, 8, 'diagonal');
  const s = tensor(c);
  const mine = new MineLoss();
  const before = tf.memory().numTensors;
  for (const name of ESTIMATORS) {
    for (const layout of ['diagonal', 'first'] as const) {
      estimatorLoss(name, s, layout, mine).dispose();
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => estimatorLoss(name, x as tf.Tensor2D, layout, mine))(s);
      value.dispose();
      grad.dispose();
    }
  }
  assert.equal(tf.memory().numTensors, before);
});
