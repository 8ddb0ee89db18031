/**
 * (K+1)-way accuracy in the queue layout (column 0 the positive): the fraction of rows whose positive
 * scores strictly above every negative, i.e. the rate at which the critic picks the true pair.
 */
export function queueAccuracy(scores: ArrayLike<number>, rows: number, cols: number): number {
  let hits = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    const pos = scores[o]!;
    let best = -Infinity;
    for (let j = 1; j < cols; j++) if (scores[o + j]! > best) best = scores[o + j]!;
    if (pos > best) hits++;
  }
  return rows === 0 ? 0 : hits / rows;
}
