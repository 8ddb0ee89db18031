/**
 * DSSM-style hashed text features: every word, and every character trigram of every word with '#'
 * boundary marks ("shoe" → #sh, sho, hoe, oe#), hashed into a fixed number of buckets. Trigrams let
 * unseen strings that share word pieces land near each other; the bucket count bounds memory however
 * large the vocabulary grows.
 */

/** Features of many texts in compressed-sparse-row form: text i owns ids[offsets[i] .. offsets[i+1]). */
export interface FeatureRows {
  offsets: Int32Array;
  ids: Int32Array;
}

/** Salts of the word and trigram hashes (an export's featuriser spec names them). */
export const WORD_SALT = 0x9747b28c;
export const TRIGRAM_SALT = 0x5bd1e995;

/** FNV-1a over UTF-16 code units of s[start, end), salted, with a final avalanche (murmur3 fmix32). */
export function hashRange(s: string, start: number, end: number, salt: number): number {
  let h = (0x811c9dc5 ^ salt) >>> 0;
  for (let i = start; i < end; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** murmur3's final avalanche of a 32-bit hash. */
function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Lower-cased words: runs of letters and digits (so `shoe-store.com` gives shoe, store, com). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Bucket ids of one text's features (duplicates kept: a repeated word weighs more). */
export function textFeatures(text: string, buckets: number): number[] {
  const mask = buckets - 1;
  return textFeatureHashes(text).map((h) => h & mask);
}

/**
 * The 32-bit hashes of one text's features, before a table's bucket count reduces them (a prepared
 * dataset keeps these). ASCII text takes a path that makes no intermediate strings (what `prepare`
 * spends its time on); any other text takes {@link textFeatureHashesOf}'s, the definition.
 */
export function textFeatureHashes(text: string): number[] {
  const lower = text.toLowerCase();
  if (!isAscii(lower)) return textFeatureHashesOf(lower);
  const out: number[] = [];
  let i = 0;
  while (i < lower.length) {
    if (!isAsciiWordChar(lower.charCodeAt(i))) {
      i++;
      continue;
    }
    let end = i + 1;
    while (end < lower.length && isAsciiWordChar(lower.charCodeAt(end))) end++;
    out.push(hashRange(lower, i, end, WORD_SALT));
    // The trigrams of '#' + word + '#': the first and last take a marker, the inner ones are the text's.
    const n = end - i;
    out.push(hash3(HASH_MARK, lower.charCodeAt(i), n === 1 ? HASH_MARK : lower.charCodeAt(i + 1)));
    for (let k = i; k + 3 <= end; k++) out.push(hashRange(lower, k, k + 3, TRIGRAM_SALT));
    if (n >= 2) out.push(hash3(lower.charCodeAt(end - 2), lower.charCodeAt(end - 1), HASH_MARK));
    i = end;
  }
  return out;
}

/** The features' hashes by their definition: every word, and every trigram of '#' + word + '#'. */
export function textFeatureHashesOf(text: string): number[] {
  const out: number[] = [];
  for (const w of words(text)) {
    out.push(hashRange(w, 0, w.length, WORD_SALT));
    const marked = `#${w}#`;
    for (let i = 0; i + 3 <= marked.length; i++) out.push(hashRange(marked, i, i + 3, TRIGRAM_SALT));
  }
  return out;
}

const HASH_MARK = 0x23;

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** An ASCII letter or digit after lower-casing: what \p{L} and \p{N} match below 0x80. */
function isAsciiWordChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
}

/** {@link hashRange} of the three code units a, b, c with the trigram salt. */
function hash3(a: number, b: number, c: number): number {
  let h = (0x811c9dc5 ^ TRIGRAM_SALT) >>> 0;
  h = Math.imul(h ^ a, 0x01000193);
  h = Math.imul(h ^ b, 0x01000193);
  h = Math.imul(h ^ c, 0x01000193);
  return fmix32(h);
}

/** Features of every text, packed as CSR. `buckets` must be a power of two. */
export function featurizeAll(texts: readonly string[], buckets: number): FeatureRows {
  if (buckets <= 0 || (buckets & (buckets - 1)) !== 0) throw new RangeError(`buckets must be a power of two, got ${buckets}`);
  const offsets = new Int32Array(texts.length + 1);
  const all: number[] = [];
  texts.forEach((t, i) => {
    for (const id of textFeatures(t, buckets)) all.push(id);
    offsets[i + 1] = all.length;
  });
  return { offsets, ids: Int32Array.from(all) };
}

/** Feature rows from explicit per-text lists of bucket ids (tests, and features made elsewhere). */
export function featureRowsFrom(lists: readonly (readonly number[])[]): FeatureRows {
  const offsets = new Int32Array(lists.length + 1);
  const ids: number[] = [];
  lists.forEach((l, i) => {
    ids.push(...l);
    offsets[i + 1] = ids.length;
  });
  return { offsets, ids: Int32Array.from(ids) };
}

/** Rows `rows` of `features`, in that order, as a table of their own (row i = features' row rows[i]). */
export function selectRows(features: FeatureRows, rows: ArrayLike<number>): FeatureRows {
  const offsets = new Int32Array(rows.length + 1);
  for (let i = 0; i < rows.length; i++) offsets[i + 1] = offsets[i]! + features.offsets[rows[i]! + 1]! - features.offsets[rows[i]!]!;
  const ids = new Int32Array(offsets[rows.length]!);
  for (let i = 0; i < rows.length; i++) ids.set(features.ids.subarray(features.offsets[rows[i]!]!, features.offsets[rows[i]! + 1]!), offsets[i]!);
  return { offsets, ids };
}
