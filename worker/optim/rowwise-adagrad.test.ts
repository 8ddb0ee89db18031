import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { expectArraysClose } from '../../testing/test-helpers.js';
import { RowwiseAdagrad } from './rowwise-adagrad.js';

test('row-wise Adagrad moves only the rows in the gradient; accumulator = running sum of mean squared row gradient', () => {
  const rng = new Rng(7);
  const rows = 12;
  const dim = 6;
  const lr = 0.05;
  const eps = 1e-8;
  const table = Float32Array.from({ length: rows * dim }, () => rng.normal());
  const ref = Float64Array.from(table);
  const acc = new Float64Array(rows);
  const opt = new RowwiseAdagrad(rows, dim, lr, eps);
  const batches = [[3, 0, 7], [7, 11], [], [3, 7, 5, 2], [7]];
  for (const batch of batches) {
    const before = table.slice();
    const values = Float32Array.from({ length: batch.length * dim }, () => rng.normal() * 2);
    opt.apply(table, { rows: Int32Array.from(batch), values });
    batch.forEach((r, i) => {
      let sq = 0;
      for (let k = 0; k < dim; k++) sq += values[i * dim + k]! ** 2;
      acc[r]! += sq / dim;
      for (let k = 0; k < dim; k++) ref[r * dim + k]! -= (lr / (Math.sqrt(acc[r]!) + eps)) * values[i * dim + k]!;
    });
    for (let r = 0; r < rows; r++) {
      if (batch.includes(r)) continue;
      assert.deepEqual(
        Array.from(table.subarray(r * dim, (r + 1) * dim)),
        Array.from(before.subarray(r * dim, (r + 1) * dim)),
        `row ${r} not in the gradient moved`,
      );
    }
    expectArraysClose(opt.accum, acc, { atol: 1e-6, rtol: 1e-5 });
    expectArraysClose(table, ref, { atol: 1e-6, rtol: 1e-5 });
  }
  // Rows never in any gradient keep a zero accumulator.
  for (const r of [1, 4, 6, 8, 9, 10]) assert.equal(opt.accum[r], 0);
});

test('first row-wise Adagrad step on a row scales its gradient to RMS lr', () => {
  // acc = mean(g²) after one step, so the update is lr·g/rms(g): its RMS is lr (up to ε).
  const dim = 4;
  const table = new Float32Array(2 * dim);
  const opt = new RowwiseAdagrad(2, dim, 0.1);
  opt.apply(table, { rows: Int32Array.from([1]), values: Float32Array.from([3, -4, 0, 0]) });
  const rms = Math.sqrt((9 + 16) / 4);
  expectArraysClose(table, [0, 0, 0, 0, (-0.1 * 3) / rms, (0.1 * 4) / rms, 0, 0], { atol: 1e-7, rtol: 1e-6 });
});
