import type { KeyBank } from './key-bank.js';

/** Added to a logit to remove its candidate: exp underflows to exactly 0 at any clamped temperature. */
export const MASKED = -1e9;

/** What the additive bias of the B×(B+K) logit matrix encodes. */
export interface LogitBiasOptions {
  /** Item id of each row's positive (-1: items have no identity, nothing to mask). */
  positiveIds: Int32Array;
  /** log of each item's sampling probability, subtracted from its logits (logQ correction), or null. */
  logQ: Float32Array | null;
  /** Keep the other rows' positives as negatives (in-batch negatives) instead of MoCo's bank-only rows. */
  inBatchNegatives: boolean;
  /** Remove candidates whose id equals the row's positive id (accidental hits). */
  maskAccidentalHits: boolean;
}

/**
 * The bias matrix for `infonceBankLoss` (row-major B×(B+K)): logQ corrections, masks for other rows'
 * positives, accidental hits and empty bank slots. Built once per step in JS: a row template is copied
 * and only the few accidental hits are patched.
 */
export function logitBias(bank: KeyBank, o: LogitBiasOptions): Float32Array {
  const b = o.positiveIds.length;
  const k = bank.capacity;
  const width = b + k;
  const out = new Float32Array(b * width);
  const corr = (id: number) => (o.logQ !== null && id >= 0 ? -o.logQ[id]! : 0);
  const template = new Float32Array(width);
  for (let j = 0; j < b; j++) template[j] = o.inBatchNegatives ? corr(o.positiveIds[j]!) : MASKED;
  const slotsById = new Map<number, number[]>();
  for (let s = 0; s < k; s++) {
    const id = bank.ids[s]!;
    template[b + s] = s < bank.filled ? corr(id) : MASKED;
    if (o.maskAccidentalHits && s < bank.filled && id >= 0) {
      const list = slotsById.get(id);
      if (list === undefined) slotsById.set(id, [s]);
      else list.push(s);
    }
  }
  for (let i = 0; i < b; i++) {
    const row = i * width;
    out.set(template, row);
    const pid = o.positiveIds[i]!;
    out[row + i] = corr(pid);
    if (!o.maskAccidentalHits || pid < 0) continue;
    for (const s of slotsById.get(pid) ?? []) out[row + b + s] = MASKED;
    if (o.inBatchNegatives) for (let j = 0; j < b; j++) if (j !== i && o.positiveIds[j] === pid) out[row + j] = MASKED;
  }
  return out;
}
