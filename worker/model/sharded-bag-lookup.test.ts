// A row-sharded table against the whole one, W members simulated in one process (the all-to-all is
// the test's own bookkeeping): the pooled lookups, the world-mean row gradients and the row-wise
// Adagrad update they give equal the unsharded table's, to float32 rounding.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { expectArraysClose } from '../../testing/test-helpers.js';
import { rowsMean } from '../collective/rows-mean.js';
import { RowwiseAdagrad } from '../optim/rowwise-adagrad.js';
import type { FeatureRows } from '../text/text-features.js';
import { RowShardPlan } from './row-shard-plan.js';
import { ownerRowGradient, partialBagSums, perRowBagGradient, pooledFromPartials, requestsByOwner } from './sharded-bag-lookup.js';
import { SparseEmbedding } from './sparse-embedding.js';

const DIM = 4;
const ROWS = 53;

/** A member's batch: `b` bags of 0–6 random rows (repeats and empty bags included). */
function bags(rng: Rng, b: number): { features: FeatureRows; items: Int32Array } {
  const offsets = [0];
  const ids: number[] = [];
  for (let i = 0; i < b; i++) {
    const n = rng.next() < 0.1 ? 0 : 1 + Math.floor(rng.next() * 6);
    for (let k = 0; k < n; k++) ids.push(Math.floor(rng.next() * ROWS));
    offsets.push(ids.length);
  }
  // Items in a shuffled order, one of them twice: a batch names items, not bags.
  const items = Int32Array.from({ length: b }, (_, i) => (i === b - 1 ? 0 : (i * 7) % b));
  return { features: { offsets: Int32Array.from(offsets), ids: Int32Array.from(ids) }, items };
}

for (const world of [2, 3]) {
  test(`${ROWS} rows sharded over ${world} members: pooled lookups, world-mean row gradients and the Adagrad update are the whole table's`, () => {
    const rng = new Rng(world);
    const whole = new SparseEmbedding(ROWS, DIM, rng);
    const plan = new RowShardPlan(ROWS, world);
    const shards = Array.from({ length: world }, (_, r) => {
      const { start, end } = plan.range(r);
      return whole.table.slice(start * DIM, end * DIM);
    });
    const members = Array.from({ length: world }, (_, m) => bags(rng, 5 + m));
    const pooledGrads = members.map(({ items }) => Float32Array.from({ length: items.length * DIM }, () => rng.normal()));

    // Forward: each member's requests go to their owners, the owners' sums come back.
    const requests = members.map(({ features, items }) => requestsByOwner(features, items, plan));
    members.forEach(({ features, items }, m) => {
      const partials = shards.map((table, o) => partialBagSums(table, DIM, requests[m]![o]!, items.length));
      expectArraysClose(pooledFromPartials(partials, features, items, DIM), whole.pool(features, items), { atol: 1e-6, rtol: 1e-6 });
    });

    // Backward: every member's per-row gradient goes to every owner.
    const perRow = members.map(({ features, items }, m) => perRowBagGradient(pooledGrads[m]!, features, items, DIM));
    const want = rowsMean(
      members.map(({ features, items }, m) => whole.rowGradient(features, items, pooledGrads[m]!)),
      world,
    );
    const got = shards.map((table, o) =>
      ownerRowGradient(
        requests.map((r) => r[o]!),
        perRow,
        DIM,
        table.length / DIM,
        world,
      ),
    );
    const globalRows = got.flatMap((g, o) => Array.from(g.rows, (r) => r + plan.range(o).start));
    assert.deepEqual(globalRows, Array.from(want.rows), 'each row of the whole gradient, on its owner');
    expectArraysClose(Float32Array.from(got.flatMap((g) => Array.from(g.values))), want.values, { atol: 1e-6, rtol: 1e-5 });

    // The owners' row-wise Adagrad on their rows is the whole table's.
    const wholeOpt = new RowwiseAdagrad(ROWS, DIM, 0.1);
    wholeOpt.apply(whole.table, want);
    shards.forEach((table, o) => new RowwiseAdagrad(table.length / DIM, DIM, 0.1).apply(table, got[o]!));
    expectArraysClose(Float32Array.from(shards.flatMap((s) => Array.from(s))), whole.table, { atol: 1e-6, rtol: 1e-5 });
  });
}

test('row plans cover the table in near-equal ranges; bad requests are refused whole', () => {
  for (const [rows, world] of [
    [53, 3],
    [2, 3],
    [1 << 26, 7],
  ] as const) {
    const plan = new RowShardPlan(rows, world);
    let next = 0;
    for (let r = 0; r < world; r++) {
      const { start, end } = plan.range(r);
      assert.equal(start, next);
      assert.ok(end - start <= Math.ceil(rows / world) && end - start >= Math.floor(rows / world));
      for (const row of [start, end - 1]) if (row >= start && row < end) assert.equal(plan.ownerOf(row), r);
      next = end;
    }
    assert.equal(next, rows);
  }
  const plan = new RowShardPlan(10, 2);
  assert.throws(() => plan.ownerOf(10), RangeError);
  assert.throws(() => plan.ownerOf(-1), RangeError);
  const table = new Float32Array(5 * DIM);
  assert.throws(() => partialBagSums(table, DIM, { bags: Int32Array.of(0), rows: Int32Array.of(5) }, 1), /row 5 of a shard of 5/);
  assert.throws(() => partialBagSums(table, DIM, { bags: Int32Array.of(3), rows: Int32Array.of(0) }, 2), /bag 3 of 2/);
  assert.throws(() => pooledFromPartials([new Float32Array(3)], { offsets: Int32Array.of(0, 1), ids: Int32Array.of(0) }, [0], DIM), RangeError);
});
