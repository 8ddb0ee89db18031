/** MoCo's momentum update of a key encoder: target ← m·target + (1−m)·source, elementwise. */
export function emaUpdate(target: Float32Array, source: Float32Array, momentum: number): void {
  const a = 1 - momentum;
  for (let i = 0; i < target.length; i++) target[i] = momentum * target[i]! + a * source[i]!;
}

/** Scales a gradient down to at most `maxNorm` in L2 norm; returns the norm before clipping. */
export function clipByGlobalNorm(grad: Float32Array, maxNorm: number | null): number {
  let sq = 0;
  for (let i = 0; i < grad.length; i++) sq += grad[i]! * grad[i]!;
  const norm = Math.sqrt(sq);
  if (maxNorm !== null && norm > maxNorm) {
    const s = maxNorm / norm;
    for (let i = 0; i < grad.length; i++) grad[i]! *= s;
  }
  return norm;
}
