/**
 * The ids start, start + 1, …, end − 1. A plain loop: `Int32Array.from` with a map function takes the
 * iterator path, measured at about 240 ns an element (4.5 s for 19 M), this at a few ns.
 */
export function idRange(start: number, end: number): Int32Array {
  const ids = new Int32Array(Math.max(0, end - start));
  for (let i = 0; i < ids.length; i++) ids[i] = start + i;
  return ids;
}
