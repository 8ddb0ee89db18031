import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { expectArraysClose } from '../../testing/test-helpers.js';
import { Adam } from './adam.js';

/** Adam as written in Kingma & Ba, Algorithm 1, in float64: p −= lr·m̂/(√v̂ + ε). */
class AdamRef {
  readonly m: Float64Array;
  readonly v: Float64Array;
  t = 0;
  constructor(
    size: number,
    readonly b1 = 0.9,
    readonly b2 = 0.999,
    readonly eps = 1e-8,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }
  apply(p: Float64Array, g: ArrayLike<number>, lr: number): void {
    this.t++;
    for (let i = 0; i < p.length; i++) {
      this.m[i] = this.b1 * this.m[i]! + (1 - this.b1) * g[i]!;
      this.v[i] = this.b2 * this.v[i]! + (1 - this.b2) * g[i]! * g[i]!;
      const mHat = this.m[i]! / (1 - this.b1 ** this.t);
      const vHat = this.v[i]! / (1 - this.b2 ** this.t);
      p[i]! -= (lr * mHat) / (Math.sqrt(vHat) + this.eps);
    }
  }
}

function randomGrad(rng: Rng, n: number): Float32Array {
  // Magnitudes spread over 0.05 .. 20 so that moments differ a lot between elements.
  return Float32Array.from({ length: n }, (_, i) => rng.normal() * [0.05, 0.3, 1, 4, 20][i % 5]!);
}

test('Adam matches the bias-corrected formulas over several steps (default hyper-parameters)', () => {
  const rng = new Rng(1);
  const n = 23;
  const params = Float32Array.from({ length: n }, () => rng.normal());
  const ref = Float64Array.from(params);
  const adam = new Adam(n, { lr: 0.01 });
  const refAdam = new AdamRef(n);
  for (let step = 1; step <= 8; step++) {
    const g = randomGrad(rng, n);
    adam.apply(params, g);
    refAdam.apply(ref, g, 0.01);
    assert.equal(adam.t, step);
    expectArraysClose(adam.m, refAdam.m, { atol: 1e-7, rtol: 1e-5 });
    expectArraysClose(adam.v, refAdam.v, { atol: 1e-9, rtol: 1e-5 });
    expectArraysClose(params, ref, { atol: 2e-6, rtol: 1e-6 });
  }
});

test('Adam with custom betas and a per-call learning rate override', () => {
  const rng = new Rng(2);
  const n = 17;
  const params = Float32Array.from({ length: n }, () => rng.normal());
  const ref = Float64Array.from(params);
  const adam = new Adam(n, { lr: 0.5, beta1: 0.5, beta2: 0.9 });
  const refAdam = new AdamRef(n, 0.5, 0.9);
  const lrs = [0.5, 0.1, 0.02, 0.5, 0.3, 0.05];
  for (const lr of lrs) {
    const g = randomGrad(rng, n);
    if (lr === 0.5) adam.apply(params, g);
    else adam.apply(params, g, lr);
    refAdam.apply(ref, g, lr);
    expectArraysClose(params, ref, { atol: 1e-5, rtol: 1e-5 });
  }
  assert.equal(adam.t, lrs.length);
});

test('Adam closed forms: a constant gradient moves every weight by lr·sign(g) per step; zero gradient never moves', () => {
  const g = Float32Array.from([3, -0.25, 0, 1e3, -7]);
  const p0 = Float32Array.from([1, 2, 3, 4, 5]);
  const params = p0.slice();
  const adam = new Adam(g.length, { lr: 0.1 });
  for (let step = 1; step <= 5; step++) {
    adam.apply(params, g);
    // m̂ = g and v̂ = g² exactly under bias correction, so the step is lr·g/|g| (up to ε).
    const expected = Array.from(p0, (p, i) => p - step * 0.1 * Math.sign(g[i]!));
    expectArraysClose(params, expected, { atol: 1e-5, rtol: 0 });
  }
  assert.equal(params[2], 3, 'zero-gradient weight untouched');
});

test('Adam uses ε as documented, lr·m̂/(√v̂ + ε), also where ε is not negligible', () => {
  // Gradients of the size of ε. Algorithm 1 at t = 1: m̂ = g, v̂ = g², step = lr·g/(|g| + ε).
  const eps = 1e-3;
  const g = Float32Array.from([1e-3, -1e-3, 4e-3]);
  const params = new Float32Array(3);
  const ref = new Float64Array(3);
  const adam = new Adam(3, { lr: 1, epsilon: eps });
  const refAdam = new AdamRef(3, 0.9, 0.999, eps);
  for (let step = 1; step <= 3; step++) {
    adam.apply(params, g);
    refAdam.apply(ref, g, 1);
    for (let i = 0; i < 3; i++) {
      assert.ok(
        Math.abs(params[i]! - ref[i]!) <= 1e-6 + 1e-4 * Math.abs(ref[i]!),
        `step ${step}, weight ${i} (g = ${g[i]}, ε = ${eps}): Adam gives ${params[i]}, lr·m̂/(√v̂+ε) gives ${ref[i]} ` +
          `(ε added to the uncorrected √v would act like ε/√(1−β2^t), ${(1 / Math.sqrt(1 - 0.999 ** step)).toFixed(1)}× larger at this step)`,
      );
    }
  }
});
