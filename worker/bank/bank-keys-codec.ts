import { createHmac, timingSafeEqual } from 'node:crypto';
import { BankKeysType, SignedBankKeysType } from '../../common/proto.js';
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
export const BANK_DROP_REASONS = [
  'unauthenticated',
  'malformed',
  'other_run',
  'wrong_dim',
  'nan_key',
  'bad_item_id',
  'unknown_producer',
  'future_step',
  'duplicate',
] as const;
/** One of {@link BANK_DROP_REASONS}. */
export type BankDropReason = (typeof BANK_DROP_REASONS)[number];

/** Bytes of the MAC that end a message's JetStream id: enough that a forger cannot guess them. */
const ID_MAC_BYTES = 16;

/** A bank message ready to publish: the SignedBankKeys bytes, and the part of its id a forger cannot know. */
export interface SignedBankMessage {
  data: Uint8Array;
  /** Hex of the MAC's first bytes: a message id that ends with it cannot be taken first by a forger. */
  idSuffix: string;
}

function mac(key: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(body).digest();
}

/** Encodes a bank message (proto/infobound.proto's BankKeys) and signs it with the job's bank key (SignedBankKeys). */
export function encodeBankKeys(m: BankEnvelope, key: Uint8Array): SignedBankMessage {
  const body = encodeBody(m);
  const hmac = mac(key, body);
  return {
    data: SignedBankKeysType.encode(SignedBankKeysType.fromObject({ bank_keys: body, hmac_sha256: hmac })).finish(),
    idSuffix: hmac.subarray(0, ID_MAC_BYTES).toString('hex'),
  };
}

function encodeBody(m: BankEnvelope): Uint8Array {
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
  /** The job's bank key (Membership.bank_key): a message whose MAC does not verify under it is dropped unread. */
  key: Uint8Array;
  runId: string;
  dim: number;
  /** Item ids a key may carry: [0, itemCount), or -1 (no identity). */
  itemCount: number;
  /** The producer the transport saw the message come from (its subject), which the payload must name. */
  sender: number;
  /** The newest step a peer can have produced by now; a later one cannot be genuine. */
  maxStep: number;
}

/**
 * Verifies, decodes and checks a received message: the envelope, or the reason to drop it. Nothing
 * that fails here reaches a replica: a message of another run, a MAC that does not verify under the
 * job's key (checked before any field is trusted), wrong dimensions, a non-finite key, an item id outside the data's, a producer outside its
 * generation or other than its sender, or a step no peer can have reached.
 */
export function decodeBankKeys(data: Uint8Array, expect: BankExpectations): BankEnvelope | BankDropReason {
  let signed: { bank_keys: Buffer; hmac_sha256: Buffer };
  try {
    signed = SignedBankKeysType.toObject(SignedBankKeysType.decode(data), { bytes: Buffer, defaults: true }) as typeof signed;
  } catch {
    return 'unauthenticated';
  }
  let raw: Record<string, unknown> | null;
  try {
    raw = BankKeysType.toObject(BankKeysType.decode(signed.bank_keys), { longs: Number, bytes: Buffer, defaults: true });
  } catch {
    raw = null;
  }
  // An earlier run of the job, signed with its own key, is no intruder: it is told apart (unverified,
  // but only to be dropped) before the MAC is checked.
  if (raw !== null && raw.run_id !== '' && raw.run_id !== expect.runId) return 'other_run';
  const want = mac(expect.key, signed.bank_keys);
  if (signed.hmac_sha256.byteLength !== want.byteLength || !timingSafeEqual(signed.hmac_sha256, want)) return 'unauthenticated';
  if (raw === null) return 'malformed';
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
  for (const id of ids) if (id !== -1 && (id < 0 || id >= expect.itemCount)) return 'bad_item_id';
  return { keys, ids, step, producer, runId, generation, world };
}
