/** A benchmark flag's list of positive integers ("1,2,4"), or an Error naming the flag. */
export function positiveInts(flag: string, text: string): number[] {
  const xs = text.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${flag}: expected positive integers separated by commas, got "${text}"`);
  return xs;
}
