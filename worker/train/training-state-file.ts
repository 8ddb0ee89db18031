import { existsSync } from 'node:fs';
import { readCheckpoint, writeCheckpoint, type CheckpointArray } from '../../common/checkpoint-file.js';
import type { Config } from '../../common/config.js';
import { UserError } from '../../common/user-error.js';
import type { StepContext } from './contrastive-step.js';
import type { TrainingTask } from './training-task.js';

/** Writes everything needed to continue exactly: parameters, optimisers, momentum encoder, bank, stream position. */
export async function saveTrainingState(path: string, step: number, position: number, task: TrainingTask<unknown>, ctx: StepContext, config: Config): Promise<void> {
  const f32 = (data: Float32Array): CheckpointArray => ({ dtype: 'float32', shape: [data.length], data });
  const i32 = (data: Int32Array): CheckpointArray => ({ dtype: 'int32', shape: [data.length], data });
  const { bank, adam } = ctx;
  await writeCheckpoint(path, {
    meta: {
      step,
      position,
      kind: config.kind,
      adam_t: adam.t,
      mine_ema: ctx.mine.ema ?? null,
      bank: { head: bank.head, filled: bank.filled, capacity: bank.capacity, dim: bank.dim, stream_seq: ctx.transport.position },
      params: modelSignature(task),
    },
    tensors: {
      'online.dense': f32(task.model.online.values),
      'adam.m': f32(adam.m),
      'adam.v': f32(adam.v),
      'bank.keys': f32(bank.keys),
      'bank.ids': i32(bank.ids),
      'bank.steps': i32(bank.steps),
      ...task.saveState(step),
    },
  });
}

function modelSignature(task: TrainingTask<unknown>): string {
  return task.model.online.specs.map((s) => `${s.name}:${s.shape.join('x')}`).join(',');
}

/** Loads a state written by saveTrainingState into `task` and `ctx`; returns where training stands. */
export async function restoreTrainingState(path: string, task: TrainingTask<unknown>, ctx: StepContext): Promise<{ step: number; position: number }> {
  if (!existsSync(path)) throw new UserError(`${path}: no such checkpoint`);
  const ck = await readCheckpoint(path);
  const meta = ck.meta as { step: number; position: number; adam_t: number; mine_ema: number | null; bank: { head: number; filled: number; capacity: number }; params: string };
  if (meta.params !== modelSignature(task)) throw new UserError(`${path}: the checkpoint was written by a model of another shape (${meta.params})`);
  if (meta.bank.capacity !== ctx.bank.capacity) throw new UserError(`${path}: the checkpoint's bank holds ${meta.bank.capacity} keys, this run's bank.size is ${ctx.bank.capacity}`);
  const arrays = new Map(Object.entries(ck.tensors));
  const get = (name: string) => {
    const a = arrays.get(name);
    if (a === undefined) throw new UserError(`${path}: the checkpoint has no ${name}`);
    return a.data;
  };
  task.model.online.values.set(get('online.dense') as Float32Array);
  ctx.adam.m.set(get('adam.m') as Float32Array);
  ctx.adam.v.set(get('adam.v') as Float32Array);
  ctx.adam.t = meta.adam_t;
  ctx.mine.restore(meta.mine_ema ?? undefined);
  try {
    ctx.bank.restore(get('bank.keys') as Float32Array, get('bank.ids') as Int32Array, get('bank.steps') as Int32Array, meta.bank.head, meta.bank.filled);
    task.restoreState(arrays);
  } catch (err) {
    if (err instanceof RangeError) throw new UserError(`${path}: ${err.message}`);
    throw err;
  }
  return { step: meta.step, position: meta.position };
}
