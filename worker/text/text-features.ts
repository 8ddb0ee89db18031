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
  const out: number[] = [];
  for (const w of words(text)) {
    out.push(hashRange(w, 0, w.length, WORD_SALT) & mask);
    const marked = `#${w}#`;
    for (let i = 0; i + 3 <= marked.length; i++) out.push(hashRange(marked, i, i + 3, TRIGRAM_SALT) & mask);
  }
  return out;
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
