import test from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { linear, l2Normalize } from './linear.js';
import { expectTensorsClose, useTestBackend } from '../testing/test-helpers.js';

test('linear: value and gradients equal tf.matMul autodiff', async () => {
  await useTestBackend();
  const x = tf.randomNormal([5, 7], 0, 1, 'float32', 1) as tf.Tensor2D;
  const w = tf.randomNormal([7, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
  const dy = tf.randomNormal([5, 3], 0, 1, 'float32', 3);
  const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(linear(a as tf.Tensor2D, b as tf.Tensor2D), dy));
  const g = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D), dy));
  expectTensorsClose(linear(x, w), tf.matMul(x, w));
  const [gx, gw] = tf.grads(f)([x, w]);
  const [ex, ew] = tf.grads(g)([x, w]);
  expectTensorsClose(gx!, ex!);
  expectTensorsClose(gw!, ew!);
});

test('l2Normalize: unit rows, direction kept', async () => {
  await useTestBackend();
  const x = tf.tensor2d([
    [3, 4],
    [0, 2],
  ]);
  expectTensorsClose(l2Normalize(x), [0.6, 0.8, 0, 1]);
});
