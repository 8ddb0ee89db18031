import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { infonceBankLoss, queueCriticScores } from './infonce-bank-loss.js';
import { l2Normalize } from './linear.js';
import { expectTensorsClose, useTestBackend } from '../testing/test-helpers.js';

/** The same loss by plain autodiff: mean over rows of logsumexp(S_i) − S_ii. */
function naiveLoss(q: tf.Tensor2D, kpos: tf.Tensor2D, scale: tf.Scalar, bankKeys: tf.Tensor2D, bias: tf.Tensor2D): tf.Scalar {
  const keys = tf.concat2d([kpos, bankKeys], 0);
  const s = tf.add(tf.mul(tf.matMul(q, keys, false, true), scale), bias) as tf.Tensor2D;
  const b = q.shape[0];
  const diag = tf.sum(tf.mul(tf.slice(s, [0, 0], [b, b]), tf.eye(b)), 1);
  return tf.mean(tf.sub(tf.logSumExp(s, 1), diag)) as tf.Scalar;
}

function setup(b: number, k: number, d: number) {
  const q = l2Normalize(tf.randomNormal([b, d], 0, 1, 'float32', 11) as tf.Tensor2D);
  const kpos = l2Normalize(tf.randomNormal([b, d], 0, 1, 'float32', 12) as tf.Tensor2D);
  const keys = l2Normalize(tf.randomNormal([k, d], 0, 1, 'float32', 13) as tf.Tensor2D);
  const bank = { keys, keysT: tf.transpose(keys) };
  const biasData = new Float32Array(b * (b + k));
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < b + k; j++) {
      // MoCo mode: other rows' positives masked; a logQ-like bias and one accidental hit per row.
      biasData[i * (b + k) + j] = j < b ? (j === i ? -0.3 : -1e9) : j === b + ((i * 3) % k) ? -1e9 : -0.1 * (j % 5);
    }
  }
  return { q, kpos, bank, bias: tf.tensor2d(biasData, [b, b + k]) };
}

test('infonceBankLoss: value and all gradients equal plain autodiff', async () => {
  await useTestBackend();
  const { q, kpos, bank, bias } = setup(6, 9, 4);
  const scale = tf.scalar(3.5);
  const fused = (a: tf.Tensor, c: tf.Tensor, s: tf.Tensor) => infonceBankLoss(a as tf.Tensor2D, c as tf.Tensor2D, s as tf.Scalar, bank, bias);
  const naive = (a: tf.Tensor, c: tf.Tensor, s: tf.Tensor) => naiveLoss(a as tf.Tensor2D, c as tf.Tensor2D, s as tf.Scalar, bank.keys, bias);
  const got = tf.valueAndGrads(fused)([q, kpos, scale]);
  const want = tf.valueAndGrads(naive)([q, kpos, scale]);
  expectTensorsClose(got.value, want.value, { atol: 1e-5 });
  for (let i = 0; i < 3; i++) expectTensorsClose(got.grads[i]!, want.grads[i]!, { atol: 1e-5, rtol: 1e-3 });
});

test('infonceBankLoss: with in-batch negatives unmasked it is the CLIP/SimCLR-style loss', async () => {
  await useTestBackend();
  const { q, kpos, bank } = setup(5, 3, 4);
  const bias = tf.zeros([5, 8]) as tf.Tensor2D;
  const scale = tf.scalar(2);
  const got = tf.valueAndGrads((a: tf.Tensor, c: tf.Tensor) => infonceBankLoss(a as tf.Tensor2D, c as tf.Tensor2D, scale, bank, bias))([q, kpos]);
  const want = tf.valueAndGrads((a: tf.Tensor, c: tf.Tensor) => naiveLoss(a as tf.Tensor2D, c as tf.Tensor2D, scale, bank.keys, bias))([q, kpos]);
  expectTensorsClose(got.value, want.value, { atol: 1e-5 });
  expectTensorsClose(got.grads[1]!, want.grads[1]!, { atol: 1e-5, rtol: 1e-3 });
});

test('queueCriticScores: positive in column 0, then scaled bank scores plus bias', async () => {
  await useTestBackend();
  const { q, kpos, bank } = setup(3, 4, 2);
  const scale = tf.scalar(2);
  const s = queueCriticScores(q, kpos, scale, bank, tf.fill([3, 1], 0.5) as tf.Tensor2D, tf.fill([1, 4], -1) as tf.Tensor2D);
  assert.deepEqual(s.shape, [3, 5]);
  const qd = q.arraySync(),
    kd = kpos.arraySync(),
    bd = bank.keys.arraySync();
  const want: number[] = [];
  for (let i = 0; i < 3; i++) {
    want.push(2 * (qd[i]![0]! * kd[i]![0]! + qd[i]![1]! * kd[i]![1]!) + 0.5);
    for (let j = 0; j < 4; j++) want.push(2 * (qd[i]![0]! * bd[j]![0]! + qd[i]![1]! * bd[j]![1]!) - 1);
  }
  expectTensorsClose(s, want);
});

test('infonceBankLoss: constant positives get no gradient, the anchors the same one', async () => {
  await useTestBackend();
  const { q, kpos, bank, bias } = setup(6, 9, 4);
  const scale = tf.scalar(3.5);
  const withPos = tf.grads((a: tf.Tensor, c: tf.Tensor) => infonceBankLoss(a as tf.Tensor2D, c as tf.Tensor2D, scale, bank, bias))([q, kpos]);
  const constPos = tf.grads((a: tf.Tensor, c: tf.Tensor) => infonceBankLoss(a as tf.Tensor2D, c as tf.Tensor2D, scale, bank, bias, false))([q, kpos]);
  expectTensorsClose(constPos[0]!, withPos[0]!);
  assert.equal(tf.max(tf.abs(constPos[1]!)).dataSync()[0], 0);
  assert.ok(tf.max(tf.abs(withPos[1]!)).dataSync()[0]! > 0);
});
