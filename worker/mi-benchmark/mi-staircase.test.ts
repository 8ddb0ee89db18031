import test from 'node:test';
import assert from 'node:assert/strict';
import { boundValues } from '../../common/estimators.js';
import { useTestBackend } from '../../testing/test-helpers.js';
import { estimateOf, runStaircase } from './mi-staircase.js';

test('InfoNCE saturates below log(batch) at high MI; the lower bounds stay below the true MI', { timeout: 120_000 }, async () => {
  await useTestBackend();
  const results = await runStaircase(
    {
      estimators: ['infonce', 'nwj', 'dv'],
      levels: [2, 10],
      batch: 64,
      steps: 200,
      critic: 'separable',
      cubic: false,
      dim: 20,
      lr: 5e-4,
      maxGradNorm: null,
      seed: 3,
    },
    () => {},
  );
  const at = (e: string, mi: number) => results.find((r) => r.estimator === e && r.true_mi === mi)!;
  assert.equal(results.length, 6);
  // At 10 nats the data allow far more than log 64 = 4.16: InfoNCE sits just under its ceiling.
  assert.ok(at('infonce', 10).mean < Math.log(64), `InfoNCE ${at('infonce', 10).mean} < log 64`);
  assert.ok(at('infonce', 10).mean > Math.log(64) - 0.5, `InfoNCE ${at('infonce', 10).mean} near log 64`);
  // Each estimator learned something at 2 nats and stays below the truth on average.
  for (const e of ['infonce', 'nwj', 'dv']) {
    assert.ok(at(e, 2).mean > 0.5 && at(e, 2).mean < 2, `${e} at 2 nats: ${at(e, 2).mean}`);
    assert.ok(at(e, 10).mean < 10, `${e} at 10 nats: ${at(e, 10).mean}`);
    assert.ok(at(e, 2).std >= 0 && Number.isFinite(at(e, 2).std));
  }
});

test('estimates: MINE reads DV, a JSD critic is read through NWJ of T + 1', () => {
  const n = 3;
  const scores = Float32Array.from([2, 0, -1, 0.5, 1.5, 0, -0.5, 0.2, 3]);
  const b = boundValues({ scores, rows: n, cols: n, layout: 'diagonal' });
  assert.equal(estimateOf('infonce', scores, n), b.infonce);
  assert.equal(estimateOf('mine', scores, n), b.dv);
  const shifted = boundValues({ scores: scores.map((s) => s + 1), rows: n, cols: n, layout: 'diagonal' });
  assert.equal(estimateOf('jsd', scores, n), shifted.nwj);
});
