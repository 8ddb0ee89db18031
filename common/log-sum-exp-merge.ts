/** One part's statistics of n rows: each row's largest logit over the part and Σ exp(logit − max). */
export interface RowExpStats {
  max: Float32Array;
  sumExp: Float32Array;
}

/**
 * Every row's statistics over the union of the parts (the shards of a partitioned bank, the slices of
 * a shard, and the row's own block): M = max_r m_r and Σ_r s_r·e^(m_r − M), in float64 and in the
 * parts' order, so every member that combines the same parts gets the same bits.
 */
export function combineRowExpStats(parts: readonly RowExpStats[]): RowExpStats {
  const n = parts[0]?.max.length ?? 0;
  for (const p of parts) {
    if (p.max.length !== n || p.sumExp.length !== n) throw new RangeError(`log-sum-exp parts of ${p.max.length}/${p.sumExp.length} rows, expected ${n}`);
  }
  const max = new Float32Array(n);
  const sumExp = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let m = Number.NEGATIVE_INFINITY;
    for (const p of parts) m = Math.max(m, p.max[i]!);
    let s = 0;
    for (const p of parts) s += p.sumExp[i]! * Math.exp(p.max[i]! - m);
    max[i] = m;
    sumExp[i] = s;
  }
  return { max, sumExp };
}

/** Every row's log Σ exp over the union of the parts: M + log Σ_r s_r·e^(m_r − M) ({@link combineRowExpStats}). */
export function mergeLogSumExp(parts: readonly RowExpStats[]): Float32Array {
  const { max, sumExp } = combineRowExpStats(parts);
  return Float32Array.from(max, (m, i) => m + Math.log(sumExp[i]!));
}
