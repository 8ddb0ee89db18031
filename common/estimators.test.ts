import assert from 'node:assert/strict';
import test from 'node:test';
import {
  BOUND_NAMES,
  ESTIMATOR_BOUND,
  ESTIMATORS,
  SCORE_LAYOUTS,
  boundValues,
  infonceCeiling,
  infonceTemperatureCap,
  type BoundValues,
  type ScoreLayout,
  type ScoreMatrix,
} from './estimators.js';
import { Rng } from './random.js';
import { expectArraysClose } from '../testing/test-helpers.js';

/** Row-major matrix from nested rows. */
function matrix(rows: number[][], layout: ScoreLayout): ScoreMatrix {
  return { scores: Float64Array.from(rows.flat()), rows: rows.length, cols: rows[0]!.length, layout };
}

/** rows×cols all equal to s. */
function constant(rows: number, cols: number, s: number): number[][] {
  return Array.from({ length: rows }, () => new Array<number>(cols).fill(s));
}

/** rows×cols of N(bias, scale²). */
function randomRows(rng: Rng, rows: number, cols: number, scale: number, bias = 0): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => bias + scale * rng.normal()));
}

/** The four bounds straight from their definitions, with no shifts or tricks (fine for |s| ≲ 300). */
function reference(rows: number[][], layout: ScoreLayout): BoundValues {
  const pos: number[] = [];
  const neg: number[] = [];
  let infonce = 0;
  rows.forEach((row, i) => {
    const p = layout === 'diagonal' ? i : 0;
    let z = 0;
    row.forEach((v, j) => {
      z += Math.exp(v);
      (j === p ? pos : neg).push(v);
    });
    infonce += row[p]! - Math.log(z);
  });
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const naiveSoftplus = (x: number) => Math.log(1 + Math.exp(x));
  return {
    infonce: Math.log(rows[0]!.length) + infonce / rows.length,
    nwj: mean(pos) - Math.exp(-1) * mean(neg.map(Math.exp)),
    dv: mean(pos) - Math.log(mean(neg.map(Math.exp))),
    jsd: -mean(pos.map((v) => naiveSoftplus(-v))) - mean(neg.map(naiveSoftplus)),
  };
}

/** Asserts every bound is close to the expected one. */
function expectBounds(actual: BoundValues, expected: BoundValues, tol = { atol: 1e-12, rtol: 1e-12 }): void {
  for (const name of BOUND_NAMES) {
    assert.doesNotThrow(() => expectArraysClose([actual[name]], [expected[name]], tol), `${name}: ${actual[name]} != ${expected[name]}`);
  }
}

/** The 'first' arrangement of a square in-batch matrix: each row's diagonal moved to column 0. */
function diagonalToFirst(rows: number[][]): number[][] {
  return rows.map((row, i) => [row[i]!, ...row.filter((_, j) => j !== i)]);
}

test('names: layouts, bounds and estimators; MINE reports the DV bound', () => {
  assert.deepEqual(SCORE_LAYOUTS, ['diagonal', 'first']);
  assert.deepEqual(BOUND_NAMES, ['infonce', 'nwj', 'dv', 'jsd']);
  assert.deepEqual(ESTIMATORS, ['infonce', 'nwj', 'dv', 'mine', 'jsd']);
  for (const e of ESTIMATORS) assert.equal(ESTIMATOR_BOUND[e], e === 'mine' ? 'dv' : e);
});

test('boundValues equals the brute-force definitions on random matrices, both layouts', () => {
  const rng = new Rng(11);
  const shapes: [number, number, ScoreLayout][] = [
    [2, 2, 'diagonal'],
    [7, 7, 'diagonal'],
    [33, 33, 'diagonal'],
    [1, 2, 'first'],
    [5, 9, 'first'],
    [16, 65, 'first'],
  ];
  for (const [r, c, layout] of shapes) {
    for (const scale of [0.3, 3, 30]) {
      const rows = randomRows(rng, r, c, scale, rng.normal());
      expectBounds(boundValues(matrix(rows, layout)), reference(rows, layout), { atol: 1e-11, rtol: 1e-11 });
    }
  }
});

test('boundValues: rows whose softplus product must be folded, and Float32 input', () => {
  const rng = new Rng(12);
  // Σ softplus of a row ≈ 600·45 nats, far past what one float64 product can hold.
  const rows = Array.from({ length: 3 }, () => Array.from({ length: 600 }, () => 90 * rng.next()));
  expectBounds(boundValues(matrix(rows, 'first')), reference(rows, 'first'), { atol: 1e-9, rtol: 1e-12 });
  const f32 = Float32Array.from(rows.flat());
  const rounded = Array.from({ length: 3 }, (_, i) => Array.from(f32.subarray(i * 600, (i + 1) * 600)));
  expectBounds(boundValues({ scores: f32, rows: 3, cols: 600, layout: 'first' }), reference(rounded, 'first'), {
    atol: 1e-9,
    rtol: 1e-12,
  });
});

test('all-equal scores: InfoNCE = 0, NWJ = s − e^(s−1), DV = 0, JSD = −softplus(−s) − softplus(s)', () => {
  for (const s of [-3, 0, 2.5, 40]) {
    const softplus = (x: number) => Math.log1p(Math.exp(x));
    const expected = { infonce: 0, nwj: s - Math.exp(s - 1), dv: 0, jsd: -softplus(-s) - softplus(s) };
    expectBounds(boundValues(matrix(constant(5, 5, s), 'diagonal')), expected);
    expectBounds(boundValues(matrix(constant(4, 9, s), 'first')), expected);
  }
});

test('InfoNCE never exceeds log N and reaches it when positives dominate; NWJ ≤ DV always', () => {
  const rng = new Rng(13);
  for (let trial = 0; trial < 200; trial++) {
    const layout = SCORE_LAYOUTS[trial % 2]!;
    const r = 1 + rng.int(12);
    const c = layout === 'diagonal' ? Math.max(r, 2) : 2 + rng.int(40);
    const v = boundValues(matrix(randomRows(rng, layout === 'diagonal' ? c : r, c, 10 * rng.next()), layout));
    assert.ok(v.infonce <= infonceCeiling(c) + 1e-12, `InfoNCE ${v.infonce} > log ${c}`);
    assert.ok(v.nwj <= v.dv + 1e-12, `NWJ ${v.nwj} > DV ${v.dv}`);
  }
  for (const n of [2, 16, 257]) {
    const rows = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 50 : 0)));
    const v = boundValues(matrix(rows, 'diagonal'));
    // log N − log(1 + (N−1)e^{−50}): equal to log N to double precision.
    assert.ok(Math.abs(v.infonce - infonceCeiling(n)) < 1e-14, `${v.infonce} vs log ${n}`);
    assert.equal(infonceCeiling(n), Math.log(n));
  }
});

test('temperature cap: reached by antipodal negatives, a floor by antipodal positives, never exceeded', () => {
  const rng = new Rng(14);
  const d = 16;
  const unit = (): number[] => {
    const v = Array.from({ length: d }, () => rng.normal());
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  const dot = (a: number[], b: number[]) => a.reduce((acc, x, k) => acc + x * b[k]!, 0);
  /** MoCo layout: each query against its positive key and a shared queue. */
  const scores = (queries: number[][], keys: number[][], queue: number[][], tau: number): number[][] =>
    queries.map((q, i) => [dot(q, keys[i]!), ...queue.map((k) => dot(q, k))].map((x) => x / tau));
  const b = 8;
  const n = 64;
  for (const tau of [0.07, 0.2, 1, 5]) {
    const u = unit();
    const minus = u.map((x) => -x);
    const same = (v: number[], count: number) => Array.from({ length: count }, () => v);
    const best = boundValues(matrix(scores(same(u, b), same(u, b), same(minus, n - 1), tau), 'first'));
    expectArraysClose([best.infonce], [infonceTemperatureCap(n, tau)], { atol: 1e-12, rtol: 1e-12 });
    const worst = boundValues(matrix(scores(same(u, b), same(minus, b), same(u, n - 1), tau), 'first'));
    expectArraysClose([worst.infonce], [Math.log(n) - Math.log(1 + (n - 1) * Math.exp(2 / tau))], { atol: 1e-12, rtol: 1e-12 });
    // In-batch with B = 2 the cap is reachable too: x = (u, −u), y = x.
    const pair = [u, minus];
    const diag = boundValues(
      matrix(
        pair.map((x) => pair.map((y) => dot(x, y) / tau)),
        'diagonal',
      ),
    );
    expectArraysClose([diag.infonce], [infonceTemperatureCap(2, tau)], { atol: 1e-12, rtol: 1e-12 });
    for (let trial = 0; trial < 20; trial++) {
      const queries = Array.from({ length: b }, unit);
      const v = boundValues(matrix(scores(queries, queries, Array.from({ length: n - 1 }, unit), tau), 'first'));
      assert.ok(v.infonce <= infonceTemperatureCap(n, tau) + 1e-12);
    }
  }
  assert.ok(Math.abs(infonceTemperatureCap(n, 0.01) - Math.log(n)) < 1e-12, 'cold critic: cap → log N');
  assert.ok(Math.abs(infonceTemperatureCap(n, 1e6)) < 1e-5, 'hot critic: cap → 0');
});

test('the same data in the diagonal and first layouts gives the same bounds', () => {
  const rng = new Rng(15);
  for (const b of [2, 5, 40]) {
    const rows = randomRows(rng, b, b, 2, rng.normal());
    expectBounds(boundValues(matrix(rows, 'diagonal')), boundValues(matrix(diagonalToFirst(rows), 'first')));
  }
});

test('extreme scores take the stable paths: shift invariance and closed forms', () => {
  const rng = new Rng(16);
  const rows = randomRows(rng, 6, 6, 3);
  const base = boundValues(matrix(rows, 'diagonal'));
  const meanPos = rows.reduce((acc, row, i) => acc + row[i]!, 0) / 6;
  const negs = rows.flatMap((row, i) => row.filter((_, j) => j !== i));
  const meanNeg = negs.reduce((x, y) => x + y, 0) / negs.length;
  for (const c of [200, -800]) {
    const v = boundValues(
      matrix(
        rows.map((row) => row.map((x) => x + c)),
        'diagonal',
      ),
    );
    // InfoNCE and DV only see score differences.
    expectArraysClose([v.infonce, v.dv], [base.infonce, base.dv], { atol: 1e-10, rtol: 1e-10 });
    // NWJ(s + c) = mean(pos) + c − e^c·(mean(pos) − NWJ(s)).
    expectArraysClose([v.nwj], [meanPos + c - Math.exp(c) * (meanPos - base.nwj)], { atol: 1e-9, rtol: 1e-12 });
  }
  // Far from 0, softplus(x) = max(x, 0) to double precision.
  const hot = boundValues(
    matrix(
      rows.map((row) => row.map((x) => x + 200)),
      'diagonal',
    ),
  );
  const cold = boundValues(
    matrix(
      rows.map((row) => row.map((x) => x - 800)),
      'diagonal',
    ),
  );
  expectArraysClose([hot.jsd, cold.jsd], [-(meanNeg + 200), meanPos - 800], { atol: 1e-9, rtol: 1e-12 });
});

test('masked (−∞) negatives add nothing; NaN propagates', () => {
  const rows = [
    [1, -Infinity, 0.5],
    [0.3, -Infinity, -Infinity],
    [2, -1, -Infinity],
  ];
  const v = boundValues(matrix(rows, 'first'));
  expectBounds(v, reference(rows, 'first'));
  assert.ok(BOUND_NAMES.every((name) => Number.isFinite(v[name])));
  const nan = boundValues(
    matrix(
      [
        [1, NaN],
        [0, 2],
      ],
      'diagonal',
    ),
  );
  assert.ok(
    BOUND_NAMES.every((name) => Number.isNaN(nan[name])),
    JSON.stringify(nan),
  );
  for (const row of [
    [NaN, 1, 2],
    [NaN, -Infinity, -Infinity],
  ]) {
    const nanPos = boundValues(matrix([row], 'first'));
    assert.ok(
      BOUND_NAMES.every((name) => Number.isNaN(nanPos[name])),
      JSON.stringify(nanPos),
    );
  }
});

test('boundValues rejects shapes that do not fit the layout', () => {
  const scores = new Float64Array(6);
  assert.throws(() => boundValues({ scores, rows: 2, cols: 3, layout: 'diagonal' }), /square/);
  assert.throws(() => boundValues({ scores, rows: 6, cols: 1, layout: 'first' }), /2 columns/);
  assert.throws(() => boundValues({ scores, rows: 2, cols: 2, layout: 'first' }), /given 6 scores/);
  assert.throws(() => boundValues({ scores, rows: 2, cols: 3, layout: 'last' as ScoreLayout }), /unknown score layout/);
});
