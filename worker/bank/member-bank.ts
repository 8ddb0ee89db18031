import { KeyBank } from './key-bank.js';
import type { KeyShard } from './key-shard.js';

/** What a member holds of the bank: all of it (bank.mode replicated), or its shard (partitioned). */
export type MemberBank = KeyBank | KeyShard;

/** Keys the whole bank holds, every shard's together. */
export function wholeBankFilled(bank: MemberBank): number {
  return bank instanceof KeyBank ? bank.filled : bank.combinedFilled;
}

/** K, the whole bank's keys when full. */
export function wholeBankSize(bank: MemberBank): number {
  return bank instanceof KeyBank ? bank.capacity : bank.bankSize;
}

/** The bank itself when this member holds all of it; a shard is an error (code that needs every key). */
export function replicatedBank(bank: MemberBank): KeyBank {
  if (!(bank instanceof KeyBank)) throw new Error('this member holds a shard of the bank, not all of it (bank.mode partitioned)');
  return bank;
}
