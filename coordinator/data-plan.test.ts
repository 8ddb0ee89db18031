import test from 'node:test';
import assert from 'node:assert/strict';
import { epochOf, epochRanges, splitOf, stepExamples } from './data-plan.js';

test('ranks read consecutive ranges of one step, in rank order', () => {
  assert.deepEqual(
    [0, 1, 2].map((r) => splitOf(48, r, 8)),
    [
      { start: 48, count: 8 },
      { start: 56, count: 8 },
      { start: 64, count: 8 },
    ],
  );
  assert.equal(stepExamples(3, 8), 24);
});

test('a split is cut at epoch boundaries into runs of each epoch', () => {
  assert.equal(epochOf(99, 100), 0);
  assert.equal(epochOf(100, 100), 1);
  assert.deepEqual(epochRanges({ start: 10, count: 5 }, 100), [{ epoch: 0, offset: 10, count: 5 }]);
  assert.deepEqual(epochRanges({ start: 96, count: 8 }, 100), [
    { epoch: 0, offset: 96, count: 4 },
    { epoch: 1, offset: 0, count: 4 },
  ]);
  // A batch larger than the epoch spans whole epochs.
  assert.deepEqual(epochRanges({ start: 5, count: 12 }, 4), [
    { epoch: 1, offset: 1, count: 3 },
    { epoch: 2, offset: 0, count: 4 },
    { epoch: 3, offset: 0, count: 4 },
    { epoch: 4, offset: 0, count: 1 },
  ]);
  assert.deepEqual(epochRanges({ start: 7, count: 0 }, 4), []);
});
