import assert from 'node:assert/strict';
import { readCheckpoint } from '../common/checkpoint-file.js';

/**
 * Checks that the checkpoint at `path` holds a full bank of whole steps: its K slots oldest first
 * in the ring, the newest from `lastStep`, and every step but the oldest (which the queue may have
 * cut) with `keysPerStep` keys — what a bank gathered from complete shards holds.
 */
export async function assertWholeStepsInBank(path: string, lastStep: number, keysPerStep: number): Promise<void> {
  const ck = await readCheckpoint(path);
  const { bank } = ck.meta as { bank: { filled: number; capacity: number; head: number } };
  assert.equal(bank.filled, bank.capacity, 'a full bank');
  const steps = ck.tensors['bank.steps']!.data as Int32Array;
  const oldestFirst = Array.from({ length: steps.length }, (_, i) => steps[(bank.head + i) % steps.length]!);
  assert.deepEqual(
    oldestFirst,
    [...oldestFirst].sort((a, b) => a - b),
    'oldest first in the ring',
  );
  const perStep = new Map<number, number>();
  for (const s of oldestFirst) perStep.set(s, (perStep.get(s) ?? 0) + 1);
  const held = [...perStep].sort(([a], [b]) => a - b);
  assert.equal(held.at(-1)![0], lastStep, 'up to the last step due');
  for (const [step, n] of held.slice(1)) assert.equal(n, keysPerStep, `every key of step ${step}`);
}
