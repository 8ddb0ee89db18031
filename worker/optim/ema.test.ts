import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { expectArraysClose } from '../../testing/test-helpers.js';
import { clipByGlobalNorm, emaUpdate } from './ema.js';

test('emaUpdate: target ← m·target + (1−m)·source elementwise; source unchanged', () => {
  const rng = new Rng(3);
  const n = 50;
  const source = Float32Array.from({ length: n }, () => rng.normal());
  const target = Float32Array.from({ length: n }, () => rng.normal());
  const ref = Float64Array.from(target);
  const srcCopy = source.slice();
  for (const m of [0.99, 0.9, 0.5]) {
    emaUpdate(target, source, m);
    for (let i = 0; i < n; i++) ref[i] = m * ref[i]! + (1 - m) * source[i]!;
    expectArraysClose(target, ref, { atol: 1e-6, rtol: 1e-6 });
  }
  assert.deepEqual(Array.from(source), Array.from(srcCopy));
  const keep = target.slice();
  emaUpdate(target, source, 1);
  assert.deepEqual(Array.from(target), Array.from(keep), 'm = 1 freezes the target');
  emaUpdate(target, source, 0);
  assert.deepEqual(Array.from(target), Array.from(source), 'm = 0 copies the source');
});

function norm64(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

test('clipByGlobalNorm returns the norm before clipping and scales down only above maxNorm', () => {
  const rng = new Rng(4);
  const g = Float32Array.from({ length: 40 }, () => rng.normal());
  const n = norm64(g);
  // Above: scaled to exactly maxNorm, same direction.
  const a = g.slice();
  assert.ok(Math.abs(clipByGlobalNorm(a, n / 4) - n) < 1e-9 * n);
  assert.ok(Math.abs(norm64(a) - n / 4) < 1e-5 * n);
  expectArraysClose(
    a,
    Array.from(g, (x) => x / 4),
    { atol: 1e-7, rtol: 1e-6 },
  );
  // Below and equal: untouched.
  for (const max of [2 * n, n]) {
    const b = g.slice();
    assert.ok(Math.abs(clipByGlobalNorm(b, max) - n) < 1e-9 * n);
    assert.deepEqual(Array.from(b), Array.from(g));
  }
  // null: no clipping at all, norm still reported.
  const c = Float32Array.from(g, (x) => x * 1e6);
  assert.ok(Math.abs(clipByGlobalNorm(c, null) - n * 1e6) < 1e-6 * n * 1e6);
  assert.deepEqual(
    Array.from(c),
    Array.from(g, (x) => Math.fround(x * 1e6)),
  );
  // Closed form: (3, 4) has norm 5; clipped to 1 gives (0.6, 0.8).
  const d = Float32Array.from([3, 4]);
  assert.equal(clipByGlobalNorm(d, 1), 5);
  expectArraysClose(d, [0.6, 0.8], { atol: 1e-7, rtol: 0 });
  // A zero gradient is never divided by zero.
  const z = new Float32Array(5);
  assert.equal(clipByGlobalNorm(z, 1), 0);
  assert.deepEqual(Array.from(z), [0, 0, 0, 0, 0]);
});
