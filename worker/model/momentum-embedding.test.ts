import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { expectArraysClose } from '../../testing/test-helpers.js';
import { featureRowsFrom as csr } from '../text/text-features.js';
import { MomentumEmbedding } from './momentum-embedding.js';
import { SparseEmbedding } from './sparse-embedding.js';

/** Distinct random subset of [0, n), in random order, of size 0..maxSize. */
function randomSubset(rng: Rng, n: number, maxSize: number): Int32Array {
  const all = rng.shuffle(Int32Array.from({ length: n }, (_, i) => i));
  return all.slice(0, rng.int(maxSize + 1));
}

function runAgainstEager(momentum: number, seed: number): void {
  const rng = new Rng(seed);
  const rows = 30;
  const dim = 4;
  const steps = 30;
  const lists = Array.from({ length: 20 }, () => Array.from({ length: 1 + rng.int(4) }, () => rng.int(rows)));
  const features = csr(lists);
  const online = new SparseEmbedding(rows, dim, new Rng(seed + 1), 0.5);
  const lazy = new MomentumEmbedding(online, momentum);
  // Eager reference in float64: every row of the key table moves after every step.
  const eager = Float64Array.from(online.table);

  for (let t = 1; t <= steps; t++) {
    // Key-tower input for step t: the key table after step t − 1.
    const items = Array.from({ length: rng.int(6) }, () => rng.int(lists.length));
    const pooled = lazy.pool(features, items, t);
    const expected = new Float64Array(items.length * dim);
    items.forEach((item, b) => {
      for (const r of lists[item]!) for (let k = 0; k < dim; k++) expected[b * dim + k]! += eager[r * dim + k]! / lists[item]!.length;
    });
    expectArraysClose(pooled, expected, { atol: 1e-5, rtol: 1e-5 });
    for (const r of online.touchedRows(features, items)) {
      expectArraysClose(lazy.table.subarray(r * dim, (r + 1) * dim), eager.subarray(r * dim, (r + 1) * dim), { atol: 1e-5, rtol: 1e-5 });
    }

    // Online update of a random subset of rows at step t (sometimes none, sometimes rows nobody pooled).
    const updated = randomSubset(rng, rows, 8);
    lazy.beforeOnlineUpdate(updated, t);
    for (const r of updated) for (let k = 0; k < dim; k++) online.table[r * dim + k]! += 0.3 * rng.normal();
    lazy.afterOnlineUpdate(updated, t);

    for (let i = 0; i < eager.length; i++) eager[i] = momentum * eager[i]! + (1 - momentum) * online.table[i]!;
  }

  lazy.settleAll(steps);
  expectArraysClose(lazy.table, eager, { atol: 1e-5, rtol: 1e-5 });
  assert.ok(
    lazy.stamp.every((s) => s === steps),
    'every row stamped with the settled step',
  );
  // Settling again changes nothing.
  lazy.settleAll(steps);
  expectArraysClose(lazy.table, eager, { atol: 1e-5, rtol: 1e-5 });
}

test('lazy momentum table equals the eager EMA over 30 steps (m = 0.9)', () => runAgainstEager(0.9, 101));
test('lazy momentum table equals the eager EMA over 30 steps (m = 0.6)', () => runAgainstEager(0.6, 202));
test('lazy momentum table equals the eager EMA over 30 steps (m = 0: copy of the online table)', () => runAgainstEager(0, 303));

test('a row left alone for Δ steps decays geometrically towards its online value', () => {
  const online = new SparseEmbedding(3, 2, new Rng(5));
  const lazy = new MomentumEmbedding(online, 0.5);
  // Step 1: row 1 jumps from its start value a to a + 8; the key moves half way; then idle for 3 steps.
  const a = Array.from(online.table.subarray(2, 4));
  lazy.beforeOnlineUpdate([1], 1);
  online.table[2]! += 8;
  online.table[3]! -= 8;
  lazy.afterOnlineUpdate([1], 1);
  expectArraysClose(lazy.table.subarray(2, 4), [a[0]! + 4, a[1]! - 4], { atol: 1e-6, rtol: 0 });
  // Pool for step 5 reads the table after step 4: gap 8·0.5^4 = 0.5 left.
  const f = csr([[1]]);
  expectArraysClose(lazy.pool(f, [0], 5), [a[0]! + 7.5, a[1]! - 7.5], { atol: 1e-6, rtol: 0 });
});
