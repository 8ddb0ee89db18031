import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { expectArraysClose } from '../../testing/test-helpers.js';
import { featureRowsFrom as csr } from '../text/text-features.js';
import { SparseEmbedding } from './sparse-embedding.js';

/** Random items of 0..maxLen features (duplicates within an item allowed), plus one fixed empty item. */
function randomLists(rng: Rng, items: number, rows: number, maxLen: number): number[][] {
  const lists: number[][] = [];
  for (let i = 0; i < items; i++) {
    const n = rng.int(maxLen + 1);
    lists.push(Array.from({ length: n }, () => rng.int(rows)));
  }
  lists[0] = [];
  return lists;
}

/** Brute-force mean pooling in float64. */
function poolRef(lists: number[][], items: number[], table: ArrayLike<number>, dim: number): Float64Array {
  const out = new Float64Array(items.length * dim);
  items.forEach((item, b) => {
    const l = lists[item]!;
    for (const r of l) for (let k = 0; k < dim; k++) out[b * dim + k]! += table[r * dim + k]! / l.length;
  });
  return out;
}

/** Brute-force dense gradient of sum(pool ⊙ G) with respect to the whole table, float64. */
function denseGradRef(lists: number[][], items: number[], g: ArrayLike<number>, rows: number, dim: number): Float64Array {
  const out = new Float64Array(rows * dim);
  items.forEach((item, b) => {
    const l = lists[item]!;
    for (const r of l) for (let k = 0; k < dim; k++) out[r * dim + k]! += g[b * dim + k]! / l.length;
  });
  return out;
}

function setup(seed: number) {
  const rng = new Rng(seed);
  const rows = 40;
  const dim = 5;
  const lists = randomLists(rng, 15, rows, 6);
  // Make sure one item repeats a row inside itself and two items share rows.
  lists[1] = [7, 7, 3];
  lists[2] = [3, 11];
  const features = csr(lists);
  // Batch with repeated items and the empty item in the middle.
  const items = [1, 2, 0, 1, ...Array.from({ length: 10 }, () => 3 + rng.int(12))];
  const emb = new SparseEmbedding(rows, dim, new Rng(seed + 1));
  const g = Float32Array.from({ length: items.length * dim }, () => rng.normal());
  return { rng, rows, dim, lists, features, items, emb, g };
}

test('pool is the mean of each item’s feature rows; an empty item pools to zeros', () => {
  const { dim, lists, features, items, emb } = setup(11);
  const out = emb.pool(features, items);
  assert.equal(out.length, items.length * dim);
  expectArraysClose(out, poolRef(lists, items, emb.table, dim), { atol: 1e-6, rtol: 1e-5 });
  const empty = items.indexOf(0);
  assert.deepEqual(Array.from(out.subarray(empty * dim, (empty + 1) * dim)), new Array(dim).fill(0));
  // A single-feature item pools to exactly its row; a duplicated feature weighs twice.
  const one = emb.pool(csr([[5]]), [0]);
  assert.deepEqual(Array.from(one), Array.from(emb.table.subarray(5 * dim, 6 * dim)));
  const item1 = emb.pool(features, [1]);
  for (let k = 0; k < dim; k++) {
    const expected = (2 * emb.table[7 * dim + k]! + emb.table[3 * dim + k]!) / 3;
    assert.ok(Math.abs(item1[k]! - expected) < 1e-6, `item [7,7,3] dim ${k}: ${item1[k]} vs ${expected}`);
  }
  // An explicit table argument is used instead of the embedding's own.
  const other = Float32Array.from(emb.table, (v) => 2 * v + 1);
  expectArraysClose(emb.pool(features, items, other), poolRef(lists, items, other, dim), { atol: 1e-6, rtol: 1e-5 });
  assert.equal(emb.pool(features, []).length, 0);
});

test('touchedRows lists distinct rows in first-seen order', () => {
  const { lists, features, items, emb } = setup(12);
  const seen: number[] = [];
  for (const item of items) for (const r of lists[item]!) if (!seen.includes(r)) seen.push(r);
  assert.deepEqual(Array.from(emb.touchedRows(features, items)), seen);
  // Scratch state is reset: a second call, and a call on other items, are not affected by the first.
  assert.deepEqual(Array.from(emb.touchedRows(features, items)), seen);
  assert.deepEqual(Array.from(emb.touchedRows(features, [2, 1])), [3, 11, 7]);
  assert.deepEqual(Array.from(emb.touchedRows(features, [0])), []);
});

test('rowGradient merges duplicate rows and scatters grad/n, matching a dense brute force', () => {
  const { rows, dim, lists, features, items, emb, g } = setup(13);
  const grad = emb.rowGradient(features, items, g);
  const dense = denseGradRef(lists, items, g, rows, dim);
  const touched = new Set(items.flatMap((i) => lists[i]!));
  assert.equal(new Set(grad.rows).size, grad.rows.length, 'rows must be distinct');
  assert.deepEqual(new Set(grad.rows), touched);
  assert.equal(grad.values.length, grad.rows.length * dim);
  grad.rows.forEach((r, i) => {
    expectArraysClose(grad.values.subarray(i * dim, (i + 1) * dim), dense.subarray(r * dim, (r + 1) * dim), { atol: 1e-6, rtol: 1e-5 });
  });
  // Same result when called again (scratch reset).
  const again = emb.rowGradient(features, items, g);
  assert.deepEqual(Array.from(again.rows), Array.from(grad.rows));
  assert.deepEqual(Array.from(again.values), Array.from(grad.values));
});

test('rowGradient on a hand-made batch: a row repeated in an item gets its share per occurrence', () => {
  const emb = new SparseEmbedding(12, 2, new Rng(3));
  const f = csr([[7, 7, 3], [3, 11], []]);
  // items: A, B, A, empty; pooled gradients g0..g3 (the empty item's gradient goes nowhere).
  const g = Float32Array.from([3, -6, 2, 4, 9, 12, 100, 100]);
  const grad = emb.rowGradient(f, [0, 1, 0, 2], g);
  assert.deepEqual(Array.from(grad.rows), [7, 3, 11]);
  // row 7: (2/3)(g0 + g2); row 3: (1/3)(g0 + g2) + (1/2) g1; row 11: (1/2) g1.
  expectArraysClose(grad.values, [8, 4, 4 + 1, 2 + 2, 1, 2], { atol: 1e-6, rtol: 1e-6 });
});

test('rowGradient equals central finite differences of sum(pool ⊙ G)', () => {
  const { rows, dim, features, items, emb, g } = setup(14);
  const grad = emb.rowGradient(features, items, g);
  const sparse = new Map<number, Float32Array>();
  grad.rows.forEach((r, i) => sparse.set(r, grad.values.subarray(i * dim, (i + 1) * dim)));
  const objective = (table: Float32Array) => {
    const p = emb.pool(features, items, table);
    let s = 0;
    for (let i = 0; i < p.length; i++) s += p[i]! * g[i]!;
    return s;
  };
  const h = 1e-2;
  const t = emb.table.slice();
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < dim; k++) {
      const idx = r * dim + k;
      const v = t[idx]!;
      t[idx] = v + h;
      const up = objective(t);
      t[idx] = v - h;
      const down = objective(t);
      t[idx] = v;
      const fd = (up - down) / (2 * h);
      const analytic = sparse.get(r)?.[k] ?? 0;
      assert.ok(Math.abs(fd - analytic) <= 2e-4 + 1e-3 * Math.abs(fd), `row ${r} dim ${k}: finite difference ${fd}, rowGradient ${analytic}`);
    }
  }
});
