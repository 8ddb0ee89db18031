import assert from 'node:assert/strict';
import test from 'node:test';
import { Backoff } from './backoff.js';

test('delays grow by the multiplier up to the cap, within the jitter, and start over after reset', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.1 });
  const bases = [100, 200, 400, 800, 1000, 1000];
  for (const base of bases) {
    const d = b.next();
    assert.ok(d >= base * 0.9 && d <= base * 1.1, `${d} within 10% of ${base}`);
  }
  b.reset();
  const first = b.next();
  assert.ok(first >= 90 && first <= 110, `after reset: ${first}`);
});

test('without jitter the delays are exact', () => {
  const b = new Backoff({ initialMs: 10, maxMs: 25, multiplier: 1.5, jitter: 0 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [10, 15, 22.5, 25]);
});
