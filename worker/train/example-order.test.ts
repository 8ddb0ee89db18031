import test from 'node:test';
import assert from 'node:assert/strict';
import { ExampleOrder } from './example-order.js';

test('each epoch holds every example exactly once, however the positions are split', () => {
  const order = new ExampleOrder(37, 5);
  // Splits of uneven sizes that straddle epoch boundaries, as a data plan with 3 workers of 8 would give.
  const seen = new Map<number, number[]>();
  for (let start = 0; start < 37 * 3; start += 8) {
    const ids = order.slice(start, Math.min(8, 37 * 3 - start));
    ids.forEach((id, i) => {
      const epoch = order.epochOf(start + i);
      const list = seen.get(epoch) ?? [];
      list.push(id);
      seen.set(epoch, list);
    });
  }
  for (const [epoch, ids] of seen)
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      Array.from({ length: 37 }, (_, i) => i),
      `epoch ${epoch}`,
    );
  assert.notDeepEqual(Array.from(order.slice(0, 37)), Array.from(order.slice(37, 37)), 'epochs are reshuffled');
});

test('the stream is a pure function of (seed, position)', () => {
  const a = new ExampleOrder(100, 9);
  const b = new ExampleOrder(100, 9);
  const whole = a.slice(0, 250);
  assert.deepEqual(Array.from(b.slice(120, 60)), Array.from(whole.subarray(120, 180)), 'random access equals the sequential read');
  assert.deepEqual(Array.from(b.slice(0, 250)), Array.from(whole));
  assert.notDeepEqual(Array.from(new ExampleOrder(100, 10).slice(0, 100)), Array.from(whole.subarray(0, 100)));
});

test('bad ranges and sizes are refused', () => {
  assert.throws(() => new ExampleOrder(0, 1), RangeError);
  const o = new ExampleOrder(10, 1);
  assert.throws(() => o.slice(-1, 2), RangeError);
  assert.throws(() => o.slice(1.5, 2), RangeError);
  assert.throws(() => o.slice(Number.NaN, 2), RangeError);
  assert.equal(o.slice(3, 0).length, 0);
});
