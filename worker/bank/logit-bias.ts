import type { KeyBank } from './key-bank.js';

/** Added to a logit to remove its candidate: exp underflows to exactly 0 at any clamped temperature. */
export const MASKED = -1e9;

/** A row's id in {@link LogitBiasParts.hitIds} when it masks no bank slot: no slot holds it (empty slots and items without identity hold -1). */
export const NO_HIT_ID = -2;

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
 * The logit bias in parts an engine can combine without a B×(B+K) matrix: the bank's block is one
 * row shared by every row, except the accidental hits, which a graph finds by comparing ids.
 */
export interface LogitBiasParts {
  /** Each row's correction of its own positive, B (the critic's positive column too). */
  positive: Float32Array;
  /** The in-batch block, B×B row-major: row i's bias for row j's positive; the diagonal is `positive`. */
  batch: Float32Array;
  /** Each bank slot's correction, K: −logQ of its item, or MASKED for an empty slot. */
  bank: Float32Array;
  /** Each row's positive id, to mask the bank slots holding it; {@link NO_HIT_ID} where a row masks nothing. */
  hitIds: Int32Array;
}

/** The parts of the logit bias: logQ corrections, masks for other rows' positives, accidental hits and empty bank slots. */
export function logitBiasParts(bank: KeyBank, o: LogitBiasOptions): LogitBiasParts {
  const bankBias = new Float32Array(bank.capacity).fill(MASKED);
  for (let s = 0; s < bank.filled; s++) bankBias[s] = logQCorrection(o.logQ, bank.ids[s]!);
  return { ...rowBiasParts(o), bank: bankBias };
}

/** The −logQ correction of item `id`'s logits (0 without logQ, or for an item without identity). */
export function logQCorrection(logQ: Float32Array | null, id: number): number {
  return logQ !== null && id >= 0 ? -logQ[id]! : 0;
}

/** The parts of the logit bias that belong to the batch's rows, whatever holds the bank. */
export function rowBiasParts(o: LogitBiasOptions): Omit<LogitBiasParts, 'bank'> {
  const b = o.positiveIds.length;
  const positive = Float32Array.from(o.positiveIds, (id) => logQCorrection(o.logQ, id));
  const hitIds = Int32Array.from(o.positiveIds, (id) => (o.maskAccidentalHits && id >= 0 ? id : NO_HIT_ID));
  const batch = new Float32Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < b; j++) {
      const hit = j !== i && hitIds[i] !== NO_HIT_ID && o.positiveIds[j] === hitIds[i];
      batch[i * b + j] = j === i ? positive[i]! : o.inBatchNegatives && !hit ? positive[j]! : MASKED;
    }
  }
  return { positive, batch, hitIds };
}

/**
 * The bias matrix for `infonceBankLoss` (row-major B×(B+K)) from {@link logitBiasParts}: each row is
 * its in-batch block and the bank's row, with its few accidental hits patched.
 */
export function logitBias(bank: KeyBank, o: LogitBiasOptions): Float32Array {
  const parts = logitBiasParts(bank, o);
  const b = o.positiveIds.length;
  const width = b + bank.capacity;
  const slotsById = new Map<number, number[]>();
  for (let s = 0; s < bank.filled; s++) {
    const id = bank.ids[s]!;
    if (id < 0) continue;
    const list = slotsById.get(id);
    if (list === undefined) slotsById.set(id, [s]);
    else list.push(s);
  }
  const out = new Float32Array(b * width);
  for (let i = 0; i < b; i++) {
    const row = i * width;
    out.set(parts.batch.subarray(i * b, (i + 1) * b), row);
    out.set(parts.bank, row + b);
    for (const s of slotsById.get(parts.hitIds[i]!) ?? []) out[row + b + s] = MASKED;
  }
  return out;
}
