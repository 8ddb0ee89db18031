import { heldBytes, type MemoryBytes } from '../../common/memory-parts.js';
import type { StepContext } from './contrastive-step.js';
import type { TrainingTask } from './training-task.js';

/** What this worker holds, by part: the model's tables, optimiser rows and parameters, Adam's moments, the bank's keys and the loaded data. */
export function memoryByPart(task: TrainingTask<unknown>, ctx: Pick<StepContext, 'bank' | 'adam'>): MemoryBytes {
  const model = task.model.memory();
  return { bank: heldBytes([ctx.bank]), tables: model.tables, optimizer: model.optimizer + heldBytes([ctx.adam]), dense: model.dense, data: task.dataBytes() };
}
