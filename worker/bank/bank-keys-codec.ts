import { BankKeysType } from '../../common/proto.js';
import type { BankMessage } from './key-bank.js';

/** A bank message as it travels: the keys plus what a replica needs to order and trust them. */
export interface BankEnvelope extends BankMessage {
  /** The run of the job that produced it (Membership.run_id). */
  runId: string;
  /** Generation the producer computed the step in, and that generation's world size. */
  generation: number;
  world: number;
}

/** Why a received bank message was dropped instead of applied; each reason is counted. */
export const BANK_DROP_REASONS = ['malformed', 'other_run', 'wrong_dim', 'nan_key', 'unknown_producer', 'future_step', 'duplicate'] as const;
/** One of {@link BANK_DROP_REASONS}. */
export type BankDropReason = (typeof BANK_DROP_REASONS)[number];

/** Encodes a bank message with proto/infobound.proto's BankKeys schema. */
export function encodeBankKeys(m: BankEnvelope): Uint8Array {
  const dim = m.ids.length === 0 ? 0 : m.keys.length / m.ids.length;
  return BankKeysType.encode(
    BankKeysType.fromObject({
      run_id: m.runId,
      step: m.step,
      producer: m.producer,
      generation: m.generation,
      world: m.world,
      encoder_version: Math.max(0, m.step - 1),
      dim,
      keys: new Uint8Array(m.keys.buffer, m.keys.byteOffset, m.keys.byteLength),
      ids: new Uint8Array(m.ids.buffer, m.ids.byteOffset, m.ids.byteLength),
    }),
  ).finish();
}

/** What a replica expects of every message it applies. */
export interface BankExpectations {
  runId: string;
  dim: number;
  /** The producer the transport saw the message come from (its subject), which the payload must name. */
  sender: number;
  /** The newest step a peer can have produced by now; a later one cannot be genuine. */
  maxStep: number;
}

/**
 * Decodes and checks a received message: the envelope, or the reason to drop it. Nothing that fails
 * here reaches a replica: wrong dimensions, a non-finite key, a producer outside its generation or
 * other than its sender, or a step no peer can have reached.
 */
export function decodeBankKeys(data: Uint8Array, expect: BankExpectations): BankEnvelope | BankDropReason {
  let raw: Record<string, unknown>;
  try {
    raw = BankKeysType.toObject(BankKeysType.decode(data), { longs: Number, bytes: Buffer, defaults: true });
  } catch {
    return 'malformed';
  }
  const {
    run_id: runId,
    step,
    producer,
    generation,
    world,
    dim,
  } = raw as { run_id: string; step: number; producer: number; generation: number; world: number; dim: number };
  const keyBytes = raw.keys as Buffer;
  const idBytes = raw.ids as Buffer;
  if (runId !== expect.runId) return 'other_run';
  if (step < 1 || generation < 1 || idBytes.byteLength % 4 !== 0) return 'malformed';
  const count = idBytes.byteLength / 4;
  if (dim !== expect.dim || keyBytes.byteLength !== count * dim * 4) return 'wrong_dim';
  if (producer >= world || producer !== expect.sender) return 'unknown_producer';
  if (step > expect.maxStep) return 'future_step';
  // Copies: the received buffer is not guaranteed to be 4-byte aligned.
  const keys = new Float32Array(count * dim);
  new Uint8Array(keys.buffer).set(keyBytes);
  for (const v of keys) if (!Number.isFinite(v)) return 'nan_key';
  const ids = new Int32Array(count);
  new Uint8Array(ids.buffer).set(idBytes);
  return { keys, ids, step, producer, runId, generation, world };
}
