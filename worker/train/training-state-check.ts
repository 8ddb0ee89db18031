import type { CheckpointArray, CheckpointContents } from '../../common/checkpoint-file.js';
import { UserError } from '../../common/user-error.js';

/** A pending bank message's header, as a checkpoint's meta holds it. */
export interface PendingHeader {
  step: number;
  producer: number;
  generation: number;
  world: number;
  count: number;
}

/** The meta of a training checkpoint, every field checked. */
export interface TrainingMeta {
  step: number;
  position: number;
  adam_t: number;
  mine_ema: number | null;
  /** The NWJ bound's shift (log mean e^T − 1 of the last logged step); absent in older checkpoints (then 0). */
  nwj_shift: number;
  /** `enqueued`: keys enqueued since the bank was empty (absent in checkpoints written before partitioned banks). */
  bank: { head: number; filled: number; capacity: number; dim: number; enqueued?: number; pending: PendingHeader[] };
  params: string;
}

/**
 * A checkpoint's meta, checked field by field before anything of it is used: a hash proves the file
 * is the one written, not that its writer was ours. Problems are one line naming the field.
 */
export function checkTrainingMeta(ck: CheckpointContents, where: string): TrainingMeta {
  const fail = (field: string, wanted: string, got: unknown) =>
    new UserError(`${where}: meta field ${field} must be ${wanted}, got ${JSON.stringify(got) ?? String(got)}`);
  const count = (o: Record<string, unknown>, field: string, path = field): number => {
    const v = o[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw fail(path, 'a non-negative integer', v);
    return v;
  };
  const object = (v: unknown, path: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(path, 'an object', v);
    return v as Record<string, unknown>;
  };
  const meta = ck.meta as Record<string, unknown>;
  const ema = meta.mine_ema ?? null;
  if (ema !== null && !(typeof ema === 'number' && ema > 0 && Number.isFinite(ema))) throw fail('mine_ema', 'null or a positive number', ema);
  const shift = meta.nwj_shift ?? 0;
  if (!(typeof shift === 'number' && Number.isFinite(shift))) throw fail('nwj_shift', 'a finite number', shift);
  if (typeof meta.params !== 'string') throw fail('params', 'a string', meta.params);
  const bank = object(meta.bank, 'bank');
  const pending = bank.pending ?? [];
  if (!Array.isArray(pending)) throw fail('bank.pending', 'a list', pending);
  return {
    step: count(meta, 'step'),
    position: count(meta, 'position'),
    adam_t: count(meta, 'adam_t'),
    mine_ema: ema,
    nwj_shift: shift,
    params: meta.params,
    bank: {
      head: count(bank, 'head', 'bank.head'),
      filled: count(bank, 'filled', 'bank.filled'),
      capacity: count(bank, 'capacity', 'bank.capacity'),
      dim: count(bank, 'dim', 'bank.dim'),
      ...(bank.enqueued !== undefined ? { enqueued: count(bank, 'enqueued', 'bank.enqueued') } : {}),
      pending: pending.map((p, i) => {
        const h = object(p, `bank.pending[${i}]`);
        const field = (name: string) => count(h, name, `bank.pending[${i}].${name}`);
        return { step: field('step'), producer: field('producer'), generation: field('generation'), world: field('world'), count: field('count') };
      }),
    },
  };
}

/** Arrays that exist only under a config switch: a checkpoint and a run that disagree on it are told which. */
const ARRAYS_OF_SETTINGS: Readonly<Record<string, string>> = { 'table.site_id': 'clicklog.site_ids' };

/**
 * Checks that `actual` holds every array of `expected` with the same dtype and shape (what this model
 * and config would write), before any of it is applied; one line naming the first that does not.
 */
export function checkArraysLike(expected: Readonly<Record<string, CheckpointArray>>, actual: ReadonlyMap<string, CheckpointArray>, where: string): void {
  const describe = (a: CheckpointArray) => `${a.dtype} [${a.shape.join(', ')}]`;
  for (const [name, setting] of Object.entries(ARRAYS_OF_SETTINGS)) {
    if (actual.has(name) && !(name in expected)) throw new UserError(`${where}: the checkpoint holds ${name}, written with ${setting} on; this run has it off`);
  }
  for (const [name, want] of Object.entries(expected)) {
    const got = actual.get(name);
    if (got === undefined) {
      const setting = ARRAYS_OF_SETTINGS[name];
      throw new UserError(`${where}: the checkpoint has no ${name}${setting === undefined ? '' : ` (written with ${setting} off; set it off to resume it)`}`);
    }
    if (got.dtype !== want.dtype || got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) {
      throw new UserError(`${where}: ${name} is ${describe(got)}, this run needs ${describe(want)}`);
    }
  }
}
