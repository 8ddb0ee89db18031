import { KeyBank } from '../bank/key-bank.js';
import { KeyShard } from '../bank/key-shard.js';
import type { StepContext } from './contrastive-step.js';

/**
 * The whole bank as one KeyBank, laid out as a replicated member's (the key at queue position p in
 * slot p mod K), for a checkpoint: a replicated member's own bank, or every member's shard gathered
 * on `root` (a collective at `step`: with a partitioned bank every member calls it, in the same
 * order; the others get null and hold no more than their shard).
 */
export async function wholeBank(ctx: StepContext, step: number, root: number): Promise<KeyBank | null> {
  const { bank } = ctx;
  if (!(bank instanceof KeyShard)) return bank;
  const slots = bank.slotsOldestFirst();
  const positions = bank.positions();
  // Each key's id, step and place counted back from the newest key (members may count from different starts).
  const meta = new Int32Array(3 * slots.length);
  const keys = new Float32Array(slots.length * bank.dim);
  slots.forEach((s, i) => {
    meta.set([bank.ids[s]!, bank.steps[s]!, bank.enqueued - positions[i]!], 3 * i);
    keys.set(bank.keys.subarray(s * bank.dim, (s + 1) * bank.dim), i * bank.dim);
  });
  const shards = await ctx.reducer.gatherBlocks({ rows: meta, values: keys }, step, root);
  if (shards === null) return null;
  const k = bank.bankSize;
  const d = bank.dim;
  const whole = { keys: new Float32Array(k * d), ids: new Int32Array(k).fill(-1), steps: new Int32Array(k).fill(-1) };
  let held = 0;
  shards.forEach((shard, r) => {
    const n = shard.rows.length / 3;
    if (!Number.isInteger(n) || shard.values.length !== n * d)
      throw new Error(`bank shard of rank ${r}: ${shard.rows.length} id words for ${shard.values.length} values of dim ${d}`);
    for (let i = 0; i < n; i++) {
      const age = shard.rows[3 * i + 2]!;
      if (age < 1 || age > bank.combinedFilled) throw new Error(`bank shard of rank ${r}: a key ${age} places back in a bank of ${bank.combinedFilled}`);
      const slot = (bank.enqueued - age) % k;
      whole.keys.set(shard.values.subarray(i * d, (i + 1) * d), slot * d);
      whole.ids[slot] = shard.rows[3 * i]!;
      whole.steps[slot] = shard.rows[3 * i + 1]!;
    }
    held += n;
  });
  if (held !== bank.combinedFilled) throw new Error(`the bank's shards hold ${held} keys together, the bank ${bank.combinedFilled}`);
  const out = new KeyBank(k, d);
  out.restore(whole.keys, whole.ids, whole.steps, bank.enqueued % k, bank.combinedFilled, bank.enqueued);
  return out;
}
