import { resolveKind, type Config } from '../../common/config/mod.js';
import { UserError } from '../../common/user-error.js';
import { ClickLogTask } from './clicklog-task.js';
import { ImageTask } from './image-task.js';
import type { TrainingTask } from './training-task.js';

/** Loads the data named by `config.data` and builds the model of its kind. */
export async function loadTask(config: Config, warn?: (message: string) => void): Promise<TrainingTask<unknown>> {
  if (config.data === null) throw new UserError('no data: pass --data FILE (a click log, or a directory of IDX files)');
  return resolveKind(config) === 'clicklog' ? ClickLogTask.load(config, warn) : ImageTask.load(config);
}
