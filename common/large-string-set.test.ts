import assert from 'node:assert/strict';
import test from 'node:test';
import { LargeStringSet } from './large-string-set.js';

test('a LargeStringSet answers like a Set, spread over its parts', () => {
  const set = new LargeStringSet(4);
  const words = Array.from({ length: 1000 }, (_, i) => `word ${i % 700}`);
  const reference = new Set<string>();
  for (const w of words) {
    assert.equal(set.has(w), reference.has(w), w);
    set.add(w);
    reference.add(w);
  }
  assert.equal(set.size, reference.size);
  assert.equal(set.size, 700);
  assert.equal(set.has('word 700'), false);
  assert.equal(set.has(''), false);
  set.add('');
  assert.equal(set.has(''), true);
});
