import type { Config } from '../../common/config.js';
import { MineLoss } from '../../common/estimators-losses.js';
import { EmbeddedBankTransport } from '../bank/bank-transport.js';
import { KeyBank } from '../bank/key-bank.js';
import { LocalReducer } from '../collective/gradient-reducer.js';
import { Adam } from '../optim/adam.js';
import type { StepContext } from './contrastive-step.js';
import type { TrainingTask } from './training-task.js';

/**
 * The StepContext of a fresh single-process run of `task` under `config`: an empty bank of
 * `bank.size` keys served in-process, a local reducer, new Adam and MINE state. Shared by the trainer
 * and the step benchmark so that the benchmark times exactly the step that training runs.
 */
export function createStepContext(config: Config, task: TrainingTask<unknown>): StepContext {
  const model = task.model;
  const bank = new KeyBank(config.bank.size, model.dim);
  return {
    bank,
    transport: new EmbeddedBankTransport(),
    reducer: new LocalReducer(),
    adam: new Adam(model.online.size, { lr: config.train.lr }),
    rank: 0,
    fixedScale: 1 / config.temperature.value,
    maxLogitScale: config.temperature.max_logit_scale,
    logQ: task.logQ,
    inBatchNegatives: config.bank.in_batch_negatives,
    maskAccidentalHits: config.bank.mask_accidental_hits,
    maxGradNorm: config.train.max_grad_norm,
    objective: config.train.objective,
    mine: new MineLoss({ alpha: config.train.mine_ema }),
    nwjShift: 0,
  };
}
