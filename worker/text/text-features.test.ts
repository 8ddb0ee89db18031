import test from 'node:test';
import assert from 'node:assert/strict';
import { featurizeAll, textFeatureHashes, textFeatureHashesOf, textFeatures, words } from './text-features.js';

test('words split on punctuation and lower-case', () => {
  assert.deepEqual(words('Best shoe-store.COM, Köln 24h'), ['best', 'shoe', 'store', 'com', 'köln', '24h']);
  assert.deepEqual(words('  ...  '), []);
});

test('one word gives the word plus its boundary-marked trigrams', () => {
  // "shoe" → word + #sh sho hoe oe# = 5 features; all inside the bucket range.
  const f = textFeatures('shoe', 1 << 17);
  assert.equal(f.length, 5);
  assert.ok(f.every((id) => id >= 0 && id < 1 << 17));
  assert.equal(new Set(f).size, 5, 'distinct n-grams should rarely collide in 2^17 buckets');
});

test('texts sharing words share features; hashing is deterministic', () => {
  const a = new Set(textFeatures('cheap running shoes', 1 << 17));
  const b = textFeatures('shoes-outlet.com', 1 << 17);
  const shared = b.filter((id) => a.has(id));
  // "shoes": the word and its 5 trigrams #sh sho hoe oes es#.
  assert.ok(shared.length >= 6, `"shoes" word + 5 trigrams expected in common, got ${shared.length}`);
  assert.deepEqual(textFeatures('abc def', 1024), textFeatures('ABC  def', 1024));
});

test('featurizeAll packs CSR rows in order and checks the bucket count', () => {
  const rows = featurizeAll(['ab', '', 'ab cd'], 1 << 10);
  // "ab" → the word plus #ab, ab#: 3 features; "" → none; "ab cd" → 6.
  assert.deepEqual(Array.from(rows.offsets), [0, 3, 3, 9]);
  assert.deepEqual(Array.from(rows.ids.subarray(0, 3)), Array.from(rows.ids.subarray(3, 6)));
  assert.throws(() => featurizeAll(['x'], 1000), /power of two/);
});

test("the ASCII path's hashes are the definition's, word by word and trigram by trigram", () => {
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const alphabet = 'abcXYZ019 -._/#Q';
  for (let i = 0; i < 2000; i++) {
    const text = Array.from({ length: next() % 24 }, () => alphabet[next() % alphabet.length]).join('');
    assert.deepEqual(textFeatureHashes(text), textFeatureHashesOf(text), JSON.stringify(text));
  }
  for (const text of ['Köln 24h', 'naïve café', 'a', 'ab', 'abc', '', 'x-y']) assert.deepEqual(textFeatureHashes(text), textFeatureHashesOf(text), text);
});
