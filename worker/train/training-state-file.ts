import { existsSync } from 'node:fs';
import { readCheckpoint, writeCheckpoint, type CheckpointArray, type CheckpointContents } from '../../common/checkpoint-file.js';
import type { Config } from '../../common/config/mod.js';
import { UserError } from '../../common/user-error.js';
import type { StepContext } from './contrastive-step.js';
import type { PendingKeys } from '../bank/bank-transport.js';
import type { TrainingTask } from './training-task.js';

/** Writes everything needed to continue exactly: parameters, optimisers, momentum encoder, bank, stream position. */
export async function saveTrainingState(
  path: string,
  step: number,
  position: number,
  task: TrainingTask<unknown>,
  ctx: StepContext,
  config: Config,
): Promise<void> {
  await writeCheckpoint(path, trainingStateContents(step, position, task, ctx, config));
}

/** The checkpoint contents of the state after `step`, with the example stream at `position`. */
export function trainingStateContents(step: number, position: number, task: TrainingTask<unknown>, ctx: StepContext, config: Config): CheckpointContents {
  const f32 = (data: Float32Array): CheckpointArray => ({ dtype: 'float32', shape: [data.length], data });
  const i32 = (data: Int32Array): CheckpointArray => ({ dtype: 'int32', shape: [data.length], data });
  const { bank, adam } = ctx;
  // The staleness window: keys of committed steps that have not joined the replica yet.
  const pending = ctx.transport.pending(step);
  const concat = <T extends Float32Array | Int32Array>(make: (n: number) => T, parts: T[]): T => {
    const out = make(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  return {
    meta: {
      step,
      position,
      kind: config.kind,
      adam_t: adam.t,
      mine_ema: ctx.mine.ema ?? null,
      bank: {
        head: bank.head,
        filled: bank.filled,
        capacity: bank.capacity,
        dim: bank.dim,
        stream_seq: ctx.transport.position,
        pending: pending.map((p) => ({ step: p.step, producer: p.producer, generation: p.generation, world: p.world, count: p.ids.length })),
      },
      params: modelSignature(task),
    },
    tensors: {
      'online.dense': f32(task.model.online.values),
      'adam.m': f32(adam.m),
      'adam.v': f32(adam.v),
      'bank.keys': f32(bank.keys),
      'bank.ids': i32(bank.ids),
      'bank.steps': i32(bank.steps),
      'bank.pending.keys': f32(
        concat(
          (n) => new Float32Array(n),
          pending.map((p) => p.keys),
        ),
      ),
      'bank.pending.ids': i32(
        concat(
          (n) => new Int32Array(n),
          pending.map((p) => p.ids),
        ),
      ),
      ...task.saveState(),
    },
  };
}

function modelSignature(task: TrainingTask<unknown>): string {
  return task.model.online.specs.map((s) => `${s.name}:${s.shape.join('x')}`).join(',');
}

/** Loads a state written by saveTrainingState into `task` and `ctx`; returns where training stands. */
export async function restoreTrainingState(path: string, task: TrainingTask<unknown>, ctx: StepContext): Promise<{ step: number; position: number }> {
  if (!existsSync(path)) throw new UserError(`${path}: no such checkpoint`);
  return applyTrainingState(await readCheckpoint(path), path, task, ctx);
}

/** Loads checkpoint contents (a file's, or a peer's state) into `task` and `ctx`; `where` names them in errors. */
export function applyTrainingState(ck: CheckpointContents, where: string, task: TrainingTask<unknown>, ctx: StepContext): { step: number; position: number } {
  const meta = ck.meta as {
    step: number;
    position: number;
    adam_t: number;
    mine_ema: number | null;
    bank: {
      head: number;
      filled: number;
      capacity: number;
      dim: number;
      pending?: { step: number; producer: number; generation: number; world: number; count: number }[];
    };
    params: string;
  };
  if (meta.bank.capacity !== ctx.bank.capacity)
    throw new UserError(`${where}: the checkpoint's bank holds ${meta.bank.capacity} keys, this run's bank.size is ${ctx.bank.capacity}`);
  const arrays = restoreModelState(ck, where, task);
  const get = (name: string) => checkpointArray(arrays, name, where);
  ctx.adam.m.set(get('adam.m') as Float32Array);
  ctx.adam.v.set(get('adam.v') as Float32Array);
  ctx.adam.t = meta.adam_t;
  ctx.mine.restore(meta.mine_ema ?? undefined);
  try {
    ctx.bank.restore(get('bank.keys') as Float32Array, get('bank.ids') as Int32Array, get('bank.steps') as Int32Array, meta.bank.head, meta.bank.filled);
    ctx.transport.restorePending(pendingKeys(meta.bank.pending ?? [], arrays, meta.bank.dim, where));
  } catch (err) {
    if (err instanceof RangeError) throw new UserError(`${where}: ${err.message}`);
    throw err;
  }
  return { step: meta.step, position: meta.position };
}

/**
 * Loads the model's part of checkpoint contents into `task` (dense parameters, tables, the momentum
 * encoder): what an export needs, without the optimisers and the bank. Returns the arrays by name.
 */
export function restoreModelState(ck: CheckpointContents, where: string, task: TrainingTask<unknown>): ReadonlyMap<string, CheckpointArray> {
  const params = (ck.meta as { params?: unknown }).params;
  if (params !== modelSignature(task)) throw new UserError(`${where}: the checkpoint was written by a model of another shape (${String(params)})`);
  const arrays = new Map(Object.entries(ck.tensors));
  task.model.online.values.set(checkpointArray(arrays, 'online.dense', where) as Float32Array);
  try {
    task.restoreState(arrays);
  } catch (err) {
    if (err instanceof RangeError) throw new UserError(`${where}: ${err.message}`);
    throw err;
  }
  return arrays;
}

function checkpointArray(arrays: ReadonlyMap<string, CheckpointArray>, name: string, where: string): CheckpointArray['data'] {
  const a = arrays.get(name);
  if (a === undefined) throw new UserError(`${where}: the checkpoint has no ${name}`);
  return a.data;
}

/** The staleness window's keys as a checkpoint holds them: per-message headers in meta, keys and ids concatenated. */
function pendingKeys(
  headers: { step: number; producer: number; generation: number; world: number; count: number }[],
  arrays: ReadonlyMap<string, CheckpointArray>,
  dim: number,
  where: string,
): PendingKeys[] {
  if (headers.length === 0) return [];
  const keys = arrays.get('bank.pending.keys')?.data as Float32Array | undefined;
  const ids = arrays.get('bank.pending.ids')?.data as Int32Array | undefined;
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
