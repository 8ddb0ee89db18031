/**
 * The first index in [0, n) where `before` is false, or n, for a `before` that is true up to some
 * index and false from there on (C++'s std::partition_point): bisection, about log2(n) calls.
 */
export function partitionPoint(n: number, before: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Where `value` stands in the ascending `sorted`, or −1 when it is absent. */
export function indexInSorted(sorted: ArrayLike<number>, value: number): number {
  const i = partitionPoint(sorted.length, (j) => sorted[j]! < value);
  return i < sorted.length && sorted[i] === value ? i : -1;
}
