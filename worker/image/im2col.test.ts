import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../common/random.js';
import { expectArraysClose, useTestBackend } from '../../testing/test-helpers.js';
import { im2col } from './im2col.js';

function randomArray(length: number, rng: Rng): Float32Array {
  return Float32Array.from({ length }, () => rng.normal());
}

/** Direct zero-padded convolution (cross-correlation, as tf.conv2d), output [n, outRows, outCols, filters]. */
function directConv(
  x: Float32Array,
  n: number,
  rows: number,
  cols: number,
  w: Float32Array,
  kernel: number,
  filters: number,
  stride: number,
  pad: number,
): { y: Float64Array; outRows: number; outCols: number } {
  const outRows = Math.floor((rows + 2 * pad - kernel) / stride) + 1;
  const outCols = Math.floor((cols + 2 * pad - kernel) / stride) + 1;
  const y = new Float64Array(n * outRows * outCols * filters);
  for (let i = 0; i < n; i++) {
    for (let oy = 0; oy < outRows; oy++) {
      for (let ox = 0; ox < outCols; ox++) {
        for (let f = 0; f < filters; f++) {
          let acc = 0;
          for (let ky = 0; ky < kernel; ky++) {
            for (let kx = 0; kx < kernel; kx++) {
              const iy = oy * stride - pad + ky;
              const ix = ox * stride - pad + kx;
              if (iy < 0 || iy >= rows || ix < 0 || ix >= cols) continue;
              acc += x[(i * rows + iy) * cols + ix]! * w[(ky * kernel + kx) * filters + f]!;
            }
          }
          y[((i * outRows + oy) * outCols + ox) * filters + f] = acc;
        }
      }
    }
  }
  return { y, outRows, outCols };
}

/** JS matMul of row-major a (m×k) and b (k×n). */
function matMul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p]!;
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j]!;
    }
  }
  return c;
}

const CASES = [
  { rows: 7, cols: 6, kernel: 3, stride: 1, pad: 1 },
  { rows: 7, cols: 6, kernel: 3, stride: 2, pad: 0 },
  { rows: 8, cols: 8, kernel: 5, stride: 2, pad: 2 },
  { rows: 5, cols: 9, kernel: 2, stride: 3, pad: 1 },
  { rows: 4, cols: 4, kernel: 1, stride: 1, pad: 0 },
] as const;

test('patches · W equals a direct convolution for several kernels, strides and pads', () => {
  const rng = new Rng(1);
  const n = 3;
  const filters = 4;
  for (const { rows, cols, kernel, stride, pad } of CASES) {
    const x = randomArray(n * rows * cols, rng);
    const w = randomArray(kernel * kernel * filters, rng);
    const { data, outRows, outCols } = im2col(x, n, rows, cols, kernel, stride, pad);
    const expected = directConv(x, n, rows, cols, w, kernel, filters, stride, pad);
    assert.equal(outRows, expected.outRows);
    assert.equal(outCols, expected.outCols);
    assert.equal(data.length, n * outRows * outCols * kernel * kernel);
    expectArraysClose(matMul(data, w, n * outRows * outCols, kernel * kernel, filters), expected.y, { atol: 1e-5 });
  }
});

test('patches are the padded image pixels in (ky, kx) order', () => {
  // 3×3 image 1..9, kernel 2, stride 2, pad 1: output 2×2, corners of the padded 5×5 image.
  const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const { data, outRows, outCols } = im2col(x, 1, 3, 3, 2, 2, 1);
  assert.deepEqual([outRows, outCols], [2, 2]);
  assert.deepEqual(Array.from(data), [0, 0, 0, 1, 0, 0, 2, 3, 0, 4, 0, 7, 5, 6, 8, 9]);
});

test('matches tf.conv2d forward on the wasm backend', async () => {
  await useTestBackend();
  const rng = new Rng(2);
  const [n, rows, cols, filters] = [4, 28, 28, 8];
  for (const { kernel, stride, pad } of [
    { kernel: 5, stride: 1, pad: 2 },
    { kernel: 3, stride: 2, pad: 1 },
    { kernel: 4, stride: 2, pad: 0 },
  ]) {
    const x = randomArray(n * rows * cols, rng);
    const w = randomArray(kernel * kernel * filters, rng);
    const before = tf.memory().numTensors;
    const { data, outRows, outCols } = im2col(x, n, rows, cols, kernel, stride, pad);
    const [viaMatMul, viaConv] = tf.tidy(() => {
      const patches = tf.tensor2d(data, [n * outRows * outCols, kernel * kernel]);
      const weights = tf.tensor2d(w, [kernel * kernel, filters]);
      const conv = tf.conv2d(tf.tensor4d(x, [n, rows, cols, 1]), tf.reshape(weights, [kernel, kernel, 1, filters]) as tf.Tensor4D, stride, pad);
      return [tf.matMul(patches, weights), conv];
    });
    assert.deepEqual(viaConv.shape, [n, outRows, outCols, filters]);
    expectArraysClose(viaMatMul.dataSync(), viaConv.dataSync(), { atol: 1e-4 });
    tf.dispose([viaMatMul, viaConv]);
    assert.equal(tf.memory().numTensors, before);
  }
});

test('patchesᵀ · dY is the conv filter gradient (checked on the cpu backend, which has the kernel)', async () => {
  const rng = new Rng(3);
  const [n, rows, cols, filters, kernel, stride, pad] = [2, 9, 9, 3, 3, 2, 1];
  const x = randomArray(n * rows * cols, rng);
  const { data, outRows, outCols } = im2col(x, n, rows, cols, kernel, stride, pad);
  const p = n * outRows * outCols;
  const dy = randomArray(p * filters, rng);
  // patchesᵀ (k²×p) · dY (p×filters), transposed by hand.
  const patchesT = new Float32Array(kernel * kernel * p);
  for (let i = 0; i < p; i++) for (let j = 0; j < kernel * kernel; j++) patchesT[j * p + i] = data[i * kernel * kernel + j]!;
  const ours = matMul(patchesT, dy, kernel * kernel, p, filters);

  await tf.setBackend('cpu');
  try {
    const grad = tf.tidy(() => {
      const input = tf.tensor4d(x, [n, rows, cols, 1]);
      const upstream = tf.tensor4d(dy, [n, outRows, outCols, filters]);
      const g = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(input, w as tf.Tensor4D, stride, pad), upstream)));
      return g(tf.zeros([kernel, kernel, 1, filters]));
    });
    expectArraysClose(grad.dataSync(), ours, { atol: 1e-4 });
    grad.dispose();
  } finally {
    await useTestBackend();
  }
});

test('fills a given out buffer and rejects bad shapes', () => {
  const x = randomArray(2 * 6 * 6, new Rng(4));
  const fresh = im2col(x, 2, 6, 6, 3, 1, 1);
  const buffer = new Float32Array(fresh.data.length).fill(Number.NaN);
  const reused = im2col(x, 2, 6, 6, 3, 1, 1, buffer);
  assert.equal(reused.data, buffer);
  assert.deepEqual(reused.data, fresh.data);
  assert.throws(() => im2col(x, 2, 6, 6, 3, 1, 1, new Float32Array(5)), /out has 5 values/);
  assert.throws(() => im2col(x, 3, 6, 6, 3, 1, 1), /batch has 72 values/);
  assert.throws(() => im2col(x, 2, 6, 6, 7, 1, 0), /does not fit/);
  assert.throws(() => im2col(x, 2, 6, 6, 3, 0, 0), /stride must be an integer >= 1/);
  assert.throws(() => im2col(x, 2, 6, 6, 3, 1, -1), /pad must be an integer >= 0/);
});

test('a batch of 256 28×28 images, kernel 5, pad 2 unfolds in a few milliseconds', () => {
  const rng = new Rng(5);
  const x = randomArray(256 * 784, rng);
  const out = new Float32Array(256 * 784 * 25);
  for (let i = 0; i < 5; i++) im2col(x, 256, 28, 28, 5, 1, 2, out);
  const reps = 20;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) im2col(x, 256, 28, 28, 5, 1, 2, out);
  const ms = (performance.now() - t0) / reps;
  console.log(`im2col B=256 28×28 k5 s1 p2: ${ms.toFixed(2)} ms`);
  assert.ok(ms < 60, `${ms} ms`);
});
