/** The parts one after another in a new array of their kind. */
export function concatArrays<T extends Float32Array | Int32Array>(make: (n: number) => T, parts: readonly T[]): T {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
