import test from 'node:test';
import assert from 'node:assert/strict';
import { rowsMean } from './rows-mean.js';

const block = (rows: number[], values: number[]) => ({ rows: Int32Array.from(rows), values: Float32Array.from(values) });

test('rowsMean: distinct rows ascending, summed over blocks and divided by the world; empty blocks add nothing', () => {
  const out = rowsMean([block([9, 2], [1, 2, 3, 4]), block([], []), block([2, 5], [10, 20, 30, 40])], 3);
  assert.deepEqual(Array.from(out.rows), [2, 5, 9]);
  assert.deepEqual(Array.from(out.values), [13 / 3, 24 / 3, 30 / 3, 40 / 3, 1 / 3, 2 / 3].map(Math.fround));
  assert.deepEqual(rowsMean([block([], []), block([], [])], 2), { rows: new Int32Array(0), values: new Float32Array(0) });
});

test('rowsMean: blocks of different widths, or values that do not fit the rows, are errors naming the rank', () => {
  assert.throws(() => rowsMean([block([1], [1, 2]), block([1], [1, 2, 3])], 2), /rank 1's rows are 3 wide, an earlier rank's 2/);
  assert.throws(() => rowsMean([block([1, 2], [1, 2, 3])], 1), /rank 0's rows: 3 values do not split into 2 rows/);
  assert.throws(() => rowsMean([block([], [1])], 1), /1 values for 0 rows/);
});
