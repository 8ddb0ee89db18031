import test from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/random.js';
import { KeyBank } from './key-bank.js';
import { logitBias, MASKED, type LogitBiasOptions } from './logit-bias.js';

const ITEMS = 6;

/** A bank of capacity K holding `n` keys (in slots 0..n-1 since it starts empty) with the given ids. */
function bankWith(K: number, ids: number[]): KeyBank {
  const bank = new KeyBank(K, 2);
  bank.enqueue({ keys: new Float32Array(ids.length * 2), ids: Int32Array.from(ids), step: 1, producer: 0 });
  return bank;
}

/**
 * Brute force, entry by entry: batch column j, then bank slot s.
 * corr(id) = −logQ[id] for a real id with a logQ table, else 0.
 */
function reference(bankIds: number[], K: number, o: LogitBiasOptions): number[][] {
  const corr = (id: number) => (o.logQ !== null && id >= 0 ? -o.logQ[id]! : 0);
  const pos = Array.from(o.positiveIds);
  const hit = (pi: number, id: number) => o.maskAccidentalHits && pi >= 0 && id === pi;
  return pos.map((pi, i) => {
    const row: number[] = [];
    pos.forEach((pj, j) => {
      if (j === i) row.push(corr(pi));
      else if (!o.inBatchNegatives) row.push(MASKED);
      else if (hit(pi, pj)) row.push(MASKED);
      else row.push(corr(pj));
    });
    for (let s = 0; s < K; s++) {
      if (s >= bankIds.length) row.push(MASKED);
      else if (hit(pi, bankIds[s]!)) row.push(MASKED);
      else row.push(corr(bankIds[s]!));
    }
    return row;
  });
}

function check(bankIds: number[], K: number, o: LogitBiasOptions, label: string): void {
  const got = logitBias(bankWith(K, bankIds), o);
  const B = o.positiveIds.length;
  assert.equal(got.length, B * (B + K), `${label}: size`);
  const want = reference(bankIds, K, o);
  for (let i = 0; i < B; i++) {
    for (let c = 0; c < B + K; c++) {
      const g = got[i * (B + K) + c]!;
      const w = Math.fround(want[i]![c]!);
      if (g !== w) {
        const where = c < B ? `batch column ${c} (positive id ${o.positiveIds[c]})` : `bank slot ${c - B} (id ${bankIds[c - B] ?? 'empty'})`;
        assert.fail(`${label}: row ${i} (positive id ${o.positiveIds[i]}), ${where}: ${g}, expected ${w}`);
      }
    }
  }
}

test('logitBias matches a brute-force B×(B+K) matrix in every mode', () => {
  const rng = new Rng(9);
  const logQ = Float32Array.from({ length: ITEMS }, () => Math.log(0.01 + rng.next()));
  const K = 10;
  for (let trial = 0; trial < 20; trial++) {
    const B = 1 + rng.int(7);
    // Ids in -1..ITEMS-1 so that duplicates in the batch, accidental hits and anonymous (-1) ids all occur.
    const positiveIds = Int32Array.from({ length: B }, () => rng.int(ITEMS + 1) - 1);
    const filled = [0, 3, 10][trial % 3]!;
    const bankIds = Array.from({ length: filled }, () => rng.int(ITEMS + 1) - 1);
    for (const inBatchNegatives of [false, true]) {
      for (const maskAccidentalHits of [false, true]) {
        for (const q of [logQ, null]) {
          check(
            bankIds,
            K,
            { positiveIds, logQ: q, inBatchNegatives, maskAccidentalHits },
            `trial ${trial} inBatch=${inBatchNegatives} mask=${maskAccidentalHits} logQ=${q !== null}`,
          );
        }
      }
    }
  }
});

test('logitBias hand-made case: MoCo mode with logQ and accidental hits', () => {
  const logQ = Float32Array.from([Math.log(0.5), Math.log(0.25), Math.log(0.125)]);
  const bank = bankWith(5, [1, -1, 0, 1]);
  const out = logitBias(bank, { positiveIds: Int32Array.from([1, 2]), logQ, inBatchNegatives: false, maskAccidentalHits: true });
  const l2 = Math.LN2;
  // row 0 (positive 1): diag −log .25, other positive masked; slots 0 and 3 are hits, slot 1 anonymous, slot 4 empty.
  const row0 = [2 * l2, MASKED, MASKED, 0, l2, MASKED, MASKED];
  // row 1 (positive 2): nothing in the bank is item 2.
  const row1 = [MASKED, 3 * l2, 2 * l2, 0, l2, 2 * l2, MASKED];
  assert.deepEqual(Array.from(out), [...row0, ...row1].map(Math.fround));
});

test('logitBias hand-made case: in-batch negatives with a duplicated positive', () => {
  const bank = bankWith(2, [3]);
  const positiveIds = Int32Array.from([3, 5, 3, -1, -1]);
  const masked = logitBias(bank, { positiveIds, logQ: null, inBatchNegatives: true, maskAccidentalHits: true });
  const W = 7;
  // Rows 0 and 2 share item 3: each masks the other and bank slot 0; -1 rows never mask each other.
  assert.deepEqual(Array.from(masked.subarray(0, W)), [0, 0, MASKED, 0, 0, MASKED, MASKED]);
  assert.deepEqual(Array.from(masked.subarray(2 * W, 3 * W)), [MASKED, 0, 0, 0, 0, MASKED, MASKED]);
  assert.deepEqual(Array.from(masked.subarray(3 * W, 4 * W)), [0, 0, 0, 0, 0, 0, MASKED]);
  const unmasked = logitBias(bank, { positiveIds, logQ: null, inBatchNegatives: true, maskAccidentalHits: false });
  assert.deepEqual(Array.from(unmasked.subarray(0, W)), [0, 0, 0, 0, 0, 0, MASKED]);
});
