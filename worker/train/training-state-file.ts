import { existsSync } from 'node:fs';
import { readCheckpoint, type CheckpointArray, type CheckpointContents } from '../../common/checkpoint-file.js';
import type { Config } from '../../common/config/mod.js';
import { UserError } from '../../common/user-error.js';
import { concatArrays } from '../../common/concat-arrays.js';
import type { StepContext } from './contrastive-step.js';
import type { PendingKeys } from '../bank/bank-transport.js';
import { KeyBank } from '../bank/key-bank.js';
import { KeyShard } from '../bank/key-shard.js';
import { wholeBankSize } from '../bank/member-bank.js';
import type { TrainingTask } from './training-task.js';
import { checkArraysLike, checkTrainingMeta, type PendingHeader } from './training-state-check.js';

/**
 * Everything needed to continue exactly, as a checkpoint's contents: parameters, optimisers, momentum
 * encoder, the whole bank `bank` (a partitioned run's shards gathered, worker/train/whole-bank.ts),
 * the stream position, the state after `step` with the example stream at `position`.
 */
export function trainingStateContents(
  step: number,
  position: number,
  task: TrainingTask<unknown>,
  ctx: StepContext,
  config: Config,
  bank: KeyBank,
): CheckpointContents {
  const { adam } = ctx;
  // The staleness window: keys of committed steps that have not joined the replica yet.
  const pending = ctx.transport.pending(step);
  return {
    meta: {
      step,
      position,
      kind: config.kind,
      adam_t: adam.t,
      mine_ema: ctx.mine.ema ?? null,
      // The NWJ bound of the next logged step is taken against it: a resume reports what the run would have.
      nwj_shift: ctx.nwjShift,
      bank: {
        head: bank.head,
        filled: bank.filled,
        capacity: bank.capacity,
        dim: bank.dim,
        enqueued: bank.enqueued,
        stream_seq: ctx.transport.position,
        pending: pending.map((p) => ({ step: p.step, producer: p.producer, generation: p.generation, world: p.world, count: p.ids.length })),
      },
      params: modelSignature(task),
    },
    tensors: stateArrays(task, ctx, bank, pending),
  };
}

/** Every array of the training state: the model's, Adam's, the bank's and its staleness window's. */
function stateArrays(task: TrainingTask<unknown>, ctx: StepContext, bank: KeyBank, pending: readonly PendingKeys[]): Record<string, CheckpointArray> {
  const f32 = (data: Float32Array): CheckpointArray => ({ dtype: 'float32', shape: [data.length], data });
  const i32 = (data: Int32Array): CheckpointArray => ({ dtype: 'int32', shape: [data.length], data });
  const { adam } = ctx;
  return {
    ...modelArrays(task),
    'adam.m': f32(adam.m),
    'adam.v': f32(adam.v),
    'bank.keys': f32(bank.keys),
    'bank.ids': i32(bank.ids),
    'bank.steps': i32(bank.steps),
    [PENDING_KEYS]: f32(
      concatArrays(
        (n) => new Float32Array(n),
        pending.map((p) => p.keys),
      ),
    ),
    [PENDING_IDS]: i32(
      concatArrays(
        (n) => new Int32Array(n),
        pending.map((p) => p.ids),
      ),
    ),
  };
}

/** The model's arrays: the dense parameters and the task's own (tables, momentum encoder). */
function modelArrays(task: TrainingTask<unknown>): Record<string, CheckpointArray> {
  return { 'online.dense': { dtype: 'float32', shape: [task.model.online.values.length], data: task.model.online.values }, ...task.saveState() };
}

const PENDING_KEYS = 'bank.pending.keys';
const PENDING_IDS = 'bank.pending.ids';

function modelSignature(task: TrainingTask<unknown>): string {
  return task.model.online.specs.map((s) => `${s.name}:${s.shape.join('x')}`).join(',');
}

/** Loads a checkpoint of trainingStateContents into `task` and `ctx`; returns where training stands. */
export async function restoreTrainingState(path: string, task: TrainingTask<unknown>, ctx: StepContext): Promise<{ step: number; position: number }> {
  if (!existsSync(path)) throw new UserError(`${path}: no such checkpoint`);
  return applyTrainingState(await readCheckpoint(path), path, task, ctx);
}

/**
 * Loads checkpoint contents (a file's, or a peer's state) into `task` and `ctx`; `where` names them in
 * errors. Every meta field and every array's dtype and shape is checked before anything is applied,
 * so a checkpoint that does not fit this model and config is one line and changes nothing.
 */
export function applyTrainingState(ck: CheckpointContents, where: string, task: TrainingTask<unknown>, ctx: StepContext): { step: number; position: number } {
  const meta = checkTrainingMeta(ck, where);
  checkSignature(meta.params, where, task);
  const k = wholeBankSize(ctx.bank);
  if (meta.bank.capacity !== k) throw new UserError(`${where}: the checkpoint's bank holds ${meta.bank.capacity} keys, this run's bank.size is ${k}`);
  if (meta.bank.dim !== ctx.bank.dim)
    throw new UserError(`${where}: the checkpoint's bank keys have ${meta.bank.dim} dimensions, this model's ${ctx.bank.dim}`);
  // A partitioned member reads the whole bank and keeps its shard of it.
  const whole = ctx.bank instanceof KeyBank ? ctx.bank : new KeyBank(k, ctx.bank.dim);
  const arrays = new Map(Object.entries(ck.tensors));
  // The staleness window's arrays are as long as its headers say: pendingKeys checks them.
  const expected = Object.fromEntries(Object.entries(stateArrays(task, ctx, whole, [])).filter(([name]) => name !== PENDING_KEYS && name !== PENDING_IDS));
  checkArraysLike(expected, arrays, where);
  const pending = pendingKeys(meta.bank.pending, arrays, meta.bank.dim, where);
  const get = (name: string) => arrays.get(name)!.data;
  try {
    // The bank first: its restore checks the ring position before it changes anything.
    whole.restore(
      get('bank.keys') as Float32Array,
      get('bank.ids') as Int32Array,
      get('bank.steps') as Int32Array,
      meta.bank.head,
      meta.bank.filled,
      meta.bank.enqueued,
    );
    if (ctx.bank instanceof KeyShard) {
      const held = whole.oldestFirst();
      ctx.bank.restore(held.keys, held.ids, held.steps, whole.enqueued);
    }
  } catch (err) {
    if (err instanceof RangeError) throw new UserError(`${where}: ${err.message}`);
    throw err;
  }
  ctx.transport.restorePending(pending);
  applyModelArrays(arrays, task);
  ctx.adam.m.set(get('adam.m') as Float32Array);
  ctx.adam.v.set(get('adam.v') as Float32Array);
  ctx.adam.t = meta.adam_t;
  ctx.mine.restore(meta.mine_ema ?? undefined);
  ctx.nwjShift = meta.nwj_shift;
  return { step: meta.step, position: meta.position };
}

/**
 * Loads the model's part of checkpoint contents into `task` (dense parameters, tables, the momentum
 * encoder), checked as {@link applyTrainingState} checks it: what an export needs, without the
 * optimisers and the bank.
 */
export function restoreModelState(ck: CheckpointContents, where: string, task: TrainingTask<unknown>): void {
  checkSignature((ck.meta as { params?: unknown }).params, where, task);
  const arrays = new Map(Object.entries(ck.tensors));
  checkArraysLike(modelArrays(task), arrays, where);
  applyModelArrays(arrays, task);
}

function checkSignature(params: unknown, where: string, task: TrainingTask<unknown>): void {
  if (params !== modelSignature(task)) throw new UserError(`${where}: the checkpoint was written by a model of another shape (${String(params)})`);
}

/** Applies arrays already checked against {@link modelArrays}. */
function applyModelArrays(arrays: ReadonlyMap<string, CheckpointArray>, task: TrainingTask<unknown>): void {
  task.model.online.values.set(arrays.get('online.dense')!.data as Float32Array);
  task.restoreState(arrays);
}

/** The staleness window's keys as a checkpoint holds them: per-message headers in meta, keys and ids concatenated. */
function pendingKeys(headers: readonly PendingHeader[], arrays: ReadonlyMap<string, CheckpointArray>, dim: number, where: string): PendingKeys[] {
  if (headers.length === 0) return [];
  const keysArray = arrays.get(PENDING_KEYS);
  const idsArray = arrays.get(PENDING_IDS);
  const keys = keysArray?.dtype === 'float32' ? (keysArray.data as Float32Array) : undefined;
  const ids = idsArray?.dtype === 'int32' ? (idsArray.data as Int32Array) : undefined;
  const total = headers.reduce((n, h) => n + h.count, 0);
  if (keys === undefined || ids === undefined || ids.length !== total || keys.length !== total * dim) {
    throw new UserError(`${where}: the checkpoint's pending bank keys do not match their headers`);
  }
  let at = 0;
  return headers.map((h) => {
    const p = { ...h, keys: keys.slice(at * dim, (at + h.count) * dim), ids: ids.slice(at, at + h.count) };
    at += h.count;
    return p;
  });
}
