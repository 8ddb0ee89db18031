import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from './random.js';
import { gaussianMi, rhoForMi, sampleCorrelatedGaussian } from './correlated-gaussian.js';

test('ρ and MI invert each other: I = −(d/2)·log(1−ρ²)', () => {
  for (const mi of [0, 2, 4, 10]) assert.ok(Math.abs(gaussianMi(rhoForMi(mi, 20), 20) - mi) < 1e-9);
  // d = 1, ρ = 0.5: −½·log(0.75).
  assert.ok(Math.abs(gaussianMi(0.5, 1) + 0.5 * Math.log(0.75)) < 1e-12);
  assert.throws(() => rhoForMi(-1, 20), RangeError);
});

test('samples have unit variance per coordinate and the requested correlation; cubic keeps the sign', () => {
  const rho = rhoForMi(4, 20);
  const n = 20_000;
  const { x, y } = sampleCorrelatedGaussian(new Rng(1), n, 20, rho, false);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n * 20; i++) {
    sxy += x[i]! * y[i]!;
    sxx += x[i]! * x[i]!;
    syy += y[i]! * y[i]!;
  }
  assert.ok(Math.abs(sxx / (n * 20) - 1) < 0.02);
  assert.ok(Math.abs(syy / (n * 20) - 1) < 0.02);
  assert.ok(Math.abs(sxy / Math.sqrt(sxx * syy) - rho) < 0.01, `correlation ${sxy / Math.sqrt(sxx * syy)} vs ρ ${rho}`);
  const cubic = sampleCorrelatedGaussian(new Rng(1), 10, 20, rho, true);
  for (let i = 0; i < 200; i++) assert.ok(Math.abs(cubic.y[i]! - y[i]! ** 3) < 1e-4 * Math.max(1, Math.abs(y[i]! ** 3)));
});
