import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../common/random.js';
import { useTestBackend } from '../../testing/test-helpers.js';
import { knnPredict, knnTop1, rawPixelEmbeddings } from './knn.js';

/** n points around `classes` random centres (noise `spread`), labelled by centre. */
function clustered(n: number, dim: number, classes: number, spread: number, rng: Rng, centres?: Float64Array) {
  const c = centres ?? Float64Array.from({ length: classes * dim }, () => rng.normal());
  const emb = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = rng.int(classes);
    labels[i] = y;
    for (let j = 0; j < dim; j++) emb[i * dim + j] = c[y * dim + j]! + spread * rng.normal();
  }
  return { emb, labels, centres: c };
}

/** Weighted kNN in float64 JS, straight from the definition; stable sort keeps lower train index on ties. */
function bruteForce(train: Float32Array, trainLabels: Int32Array, test: Float32Array, dim: number, k: number, t: number, classes: number): Int32Array {
  const unit = (x: Float32Array, i: number) => {
    const row = Array.from(x.subarray(i * dim, (i + 1) * dim));
    const norm = Math.hypot(...row);
    return row.map((v) => v / norm);
  };
  const n = train.length / dim;
  const trainUnit = Array.from({ length: n }, (_, i) => unit(train, i));
  const out = new Int32Array(test.length / dim);
  for (let q = 0; q < out.length; q++) {
    const u = unit(test, q);
    const sims = trainUnit.map((v, i) => ({ i, s: v.reduce((acc, x, j) => acc + x * u[j]!, 0) }));
    sims.sort((a, b) => b.s - a.s);
    const votes = new Float64Array(classes);
    for (const { i, s } of sims.slice(0, k)) votes[trainLabels[i]!] += Math.exp(s / t);
    out[q] = votes.indexOf(Math.max(...votes));
  }
  return out;
}

test('agrees with a brute-force weighted kNN, chunked or not, without leaking tensors', async () => {
  await useTestBackend();
  const rng = new Rng(1);
  const [dim, classes] = [16, 5];
  const train = clustered(300, dim, classes, 1.2, rng);
  const testSet = clustered(120, dim, classes, 1.2, rng, train.centres);
  const before = tf.memory().numTensors;
  for (const [k, temperature] of [
    [20, 0.07],
    [200, 0.07],
    [7, 0.5],
  ] as const) {
    const expected = bruteForce(train.emb, train.labels, testSet.emb, dim, k, temperature, classes);
    const base = { trainEmb: train.emb, trainLabels: train.labels, testEmb: testSet.emb, dim, k, temperature, classes };
    assert.deepEqual(await knnPredict(base), expected, `k=${k} t=${temperature}`);
    // 7 test rows per chunk: many chunks and a ragged last one.
    assert.deepEqual(await knnPredict({ ...base, chunkBytes: 7 * 4 * 300 }), expected);
    let correct = 0;
    expected.forEach((y, i) => (correct += y === testSet.labels[i] ? 1 : 0));
    assert.equal(await knnTop1({ ...base, testLabels: testSet.labels }), correct / expected.length);
  }
  const acc = await knnTop1({ trainEmb: train.emb, trainLabels: train.labels, testEmb: testSet.emb, testLabels: testSet.labels, dim, classes });
  assert.ok(acc > 0.8, `clustered data should be easy, got ${acc}`);
  assert.equal(tf.memory().numTensors, before);
});

test('k = 1 is the nearest neighbour by cosine, whatever the scale of the rows', async () => {
  await useTestBackend();
  const rng = new Rng(2);
  const dim = 8;
  const train = clustered(50, dim, 10, 1, rng);
  // Test rows: each train row rescaled (and slightly perturbed), so its own row is its nearest neighbour by cosine.
  const test = new Float32Array(train.emb.length);
  for (let i = 0; i < 50; i++) {
    const scale = 0.01 + 100 * rng.next();
    for (let j = 0; j < dim; j++) test[i * dim + j] = scale * (train.emb[i * dim + j]! + 1e-3 * rng.normal());
  }
  // Labels that only the nearest neighbour gets right: each row its own class.
  const ownLabels = Int32Array.from({ length: 50 }, (_, i) => i);
  assert.equal(await knnTop1({ trainEmb: train.emb, trainLabels: ownLabels, testEmb: test, testLabels: ownLabels, dim, k: 1, classes: 50 }), 1);
});

test('ties go to the lower train index among neighbours and to the lower class among votes', async () => {
  await useTestBackend();
  const v = [1, 2, 3];
  const trainEmb = Float32Array.from([...v, ...v, -1, 0, 0]);
  const trainLabels = Uint8Array.from([2, 1, 0]);
  const testEmb = Float32Array.from([...v.map((x) => 5 * x)]);
  const base = { trainEmb, trainLabels, testEmb, dim: 3, classes: 3 };
  // Rows 0 and 1 are identical: k = 1 takes row 0.
  assert.deepEqual(await knnPredict({ ...base, k: 1 }), Int32Array.from([2]));
  // k = 2: equal votes for classes 1 and 2, the lower class wins.
  assert.deepEqual(await knnPredict({ ...base, k: 2 }), Int32Array.from([1]));
  // Same answer every time.
  for (let i = 0; i < 5; i++) assert.deepEqual(await knnPredict({ ...base, k: 2 }), Int32Array.from([1]));
});

test('temperature weights close neighbours: a sharp one outvotes two loose ones', async () => {
  await useTestBackend();
  // Cosine to the test row [1, 0]: 0.99 for the class-0 row, 0.9 for the two class-1 rows.
  const row = (c: number) => [c, Math.sqrt(1 - c * c)];
  const trainEmb = Float32Array.from([...row(0.99), ...row(0.9), ...row(0.9)]);
  const trainLabels = Int32Array.from([0, 1, 1]);
  const base = { trainEmb, trainLabels, testEmb: Float32Array.from([1, 0]), testLabels: Int32Array.from([0]), dim: 2, k: 3, classes: 2 };
  assert.equal(await knnTop1({ ...base, temperature: 0.07 }), 1); // e^(0.99/0.07) > 2·e^(0.9/0.07)
  assert.equal(await knnTop1({ ...base, temperature: 1 }), 0); // e^0.99 < 2·e^0.9
  // A tiny temperature must not overflow exp into a tie of infinities.
  assert.equal(await knnTop1({ ...base, temperature: 1e-4 }), 1);
  // k larger than the train set uses every row.
  assert.equal(await knnTop1({ ...base, k: 200, temperature: 1 }), 0);
});

test('raw pixels give the baseline embedding: pixel / 255 of the first count images', async () => {
  await useTestBackend();
  const images = Uint8Array.from([0, 255, 51, 102, 7, 7, 9, 9]);
  assert.deepEqual(rawPixelEmbeddings(images, 2, 2), Float32Array.from([0, 1, 0.2, 0.4]));
  assert.throws(() => rawPixelEmbeddings(images, 5, 2), /fewer than 5 images/);
  // Two pixel patterns: the baseline separates them.
  const rng = new Rng(3);
  const make = (n: number) => {
    const labels = Uint8Array.from({ length: n }, () => rng.int(2));
    const px = new Uint8Array(n * 16);
    labels.forEach((y, i) => {
      for (let j = 0; j < 16; j++) px[i * 16 + j] = (j < 8 === (y === 0) ? 200 : 20) + rng.int(40);
    });
    return { labels, emb: rawPixelEmbeddings(px, n, 16) };
  };
  const train = make(100);
  const test = make(40);
  assert.equal(await knnTop1({ trainEmb: train.emb, trainLabels: train.labels, testEmb: test.emb, testLabels: test.labels, dim: 16, classes: 2 }), 1);
});

test('bad input is rejected before any tensor is made', async () => {
  await useTestBackend();
  const before = tf.memory().numTensors;
  const base = {
    trainEmb: new Float32Array(8),
    trainLabels: Int32Array.from([0, 1]),
    testEmb: new Float32Array(4),
    testLabels: Int32Array.from([0]),
    dim: 4,
    classes: 2,
  };
  await assert.rejects(knnTop1({ ...base, trainLabels: Int32Array.from([0, 2]) }), /trainLabels\[1\] = 2 is outside \[0, 2\)/);
  await assert.rejects(knnTop1({ ...base, testEmb: Float32Array.from([0, Number.NaN, 0, 0]) }), /testEmb row 0 holds NaN/);
  await assert.rejects(knnTop1({ ...base, dim: 3 }), /testLabels for 4 test values of dim 3/);
  await assert.rejects(knnTop1({ ...base, testLabels: Int32Array.from([0, 1]) }), /2 testLabels/);
  await assert.rejects(knnTop1({ ...base, k: 0 }), /k must be a positive integer/);
  await assert.rejects(knnTop1({ ...base, temperature: 0 }), /temperature/);
  assert.equal(tf.memory().numTensors, before);
});

test('10000 train × 2000 test × 128 dims runs well under the time budget', async () => {
  await useTestBackend();
  const rng = new Rng(4);
  const [dim, classes] = [128, 10];
  const train = clustered(10000, dim, classes, 3, rng);
  const test = clustered(2000, dim, classes, 3, rng, train.centres);
  const opts = { trainEmb: train.emb, trainLabels: train.labels, testEmb: test.emb, testLabels: test.labels, dim, classes };
  await knnTop1({ ...opts, testEmb: test.emb.subarray(0, 10 * dim), testLabels: test.labels.subarray(0, 10) }); // warm-up
  const before = tf.memory().numTensors;
  const t0 = performance.now();
  const acc = await knnTop1(opts);
  const ms = performance.now() - t0;
  console.log(`knnTop1 10000×2000×128, k=200: ${ms.toFixed(0)} ms, top-1 ${acc.toFixed(3)}`);
  assert.ok(acc > 0.9);
  assert.ok(ms < 8000, `${ms} ms`);
  assert.equal(tf.memory().numTensors, before);
});
