import type { Rng } from './random.js';

/**
 * The correlated-Gaussian benchmark of Poole et al. 2019 ("On Variational Bounds of Mutual
 * Information"): x ~ N(0, I_d), y = ρx + sqrt(1−ρ²)·ε with ε ~ N(0, I_d), so each of the d coordinate
 * pairs is a bivariate Gaussian with correlation ρ and I(X;Y) = −(d/2)·log(1−ρ²). The cubic variant
 * maps y → y³: an invertible map of y, so the MI is unchanged while a linear critic no longer fits.
 */

/** I(X;Y) in nats for correlation ρ in d dimensions. */
export function gaussianMi(rho: number, dim: number): number {
  return -(dim / 2) * Math.log1p(-rho * rho);
}

/** The correlation ρ ≥ 0 that gives `mi` nats in d dimensions (inverse of {@link gaussianMi}). */
export function rhoForMi(mi: number, dim: number): number {
  if (!(mi >= 0) || !Number.isFinite(mi)) throw new RangeError(`MI must be a finite number ≥ 0, got ${mi}`);
  return Math.sqrt(-Math.expm1((-2 * mi) / dim));
}

/** A batch of n pairs, row-major n×d each. */
export interface GaussianBatch {
  x: Float32Array;
  y: Float32Array;
}

/** n samples of (x, y) at correlation ρ; `cubic` applies y → y³. */
export function sampleCorrelatedGaussian(rng: Rng, n: number, dim: number, rho: number, cubic: boolean): GaussianBatch {
  const x = new Float32Array(n * dim);
  const y = new Float32Array(n * dim);
  const noise = Math.sqrt(1 - rho * rho);
  for (let i = 0; i < n * dim; i++) {
    const xi = rng.normal();
    const yi = rho * xi + noise * rng.normal();
    x[i] = xi;
    y[i] = cubic ? yi * yi * yi : yi;
  }
  return { x, y };
}
