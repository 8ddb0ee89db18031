import { TRIGRAM_SALT, WORD_SALT } from '../text/text-features.js';

/**
 * worker/text/text-features.ts described as data, so that another tool can featurise text exactly as
 * the towers were trained: which features, how they are hashed into buckets, how a bag is pooled.
 */
export function featurizerSpec(buckets: number) {
  return {
    type: 'hashed-text',
    reference: 'worker/text/text-features.ts',
    lowercase: true,
    words: 'runs of Unicode letters and digits: /[\\p{L}\\p{N}]+/gu after lower-casing',
    features: [
      { kind: 'word', text: 'the word itself', salt: WORD_SALT },
      { kind: 'char-trigram', text: "every 3 consecutive UTF-16 code units of '#' + word + '#'", salt: TRIGRAM_SALT },
    ],
    hash: {
      name: 'fnv1a32-salted-fmix32',
      steps: [
        'h = 0x811c9dc5 XOR salt',
        'for each UTF-16 code unit c of the feature text: h = (h XOR c) * 0x01000193 mod 2^32',
        'h ^= h >>> 16; h = h * 0x85ebca6b mod 2^32; h ^= h >>> 13; h = h * 0xc2b2ae35 mod 2^32; h ^= h >>> 16',
      ],
      bucket: 'h AND (buckets - 1)',
    },
    buckets,
    duplicates: 'kept: a repeated word weighs more',
    pooling: 'mean of the feature rows; no features pool to zeros',
    model_input: { ids: 'int64 [N], every item’s bucket ids in turn', offsets: 'int64 [B+1], item b owns ids[offsets[b] .. offsets[b+1])' },
  };
}
