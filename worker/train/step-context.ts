import type { Config } from '../../common/config/mod.js';
import { MineLoss } from '../../common/estimators-losses.js';
import type { BankTransport } from '../bank/bank-transport.js';
import { KeyBank } from '../bank/key-bank.js';
import { KeyShard, type ShardPlace } from '../bank/key-shard.js';
import { UserError } from '../../common/user-error.js';
import { ClickLogModel } from './clicklog-model.js';
import { LocalReducer } from '../collective/gradient-reducer.js';
import { Adam } from '../optim/adam.js';
import { OnnxDenseEngine } from '../engine/onnx/onnx-dense-engine.js';
import { TfjsDenseEngine } from './tfjs-dense-engine.js';
import type { StepContext } from './contrastive-step.js';
import type { TrainingTask } from './training-task.js';

/**
 * The StepContext of a fresh single-process run of `task` under `config`: an empty bank of
 * `bank.size` keys fed by `transport` (with bank.mode partitioned, the shard of the member at `place`), a local reducer, new Adam and MINE state. Shared by the trainer
 * and the step benchmark so that the benchmark times exactly the step that training runs.
 */
export function createStepContext(
  config: Config,
  task: TrainingTask<unknown>,
  transport: BankTransport,
  place: ShardPlace = { rank: 0, world: 1 },
): StepContext {
  const model = task.model;
  const bank = config.bank.mode === 'partitioned' ? partitionedBank(config, task, place) : new KeyBank(config.bank.size, model.dim);
  return {
    bank,
    transport,
    reducer: new LocalReducer(),
    adam: new Adam(model.online.size, { lr: config.train.lr }),
    rank: 0,
    round: { generation: 1, world: 1 },
    fixedScale: 1 / config.temperature.value,
    maxLogitScale: config.temperature.max_logit_scale,
    logQ: task.logQ,
    inBatchNegatives: config.bank.in_batch_negatives,
    maskAccidentalHits: config.bank.mask_accidental_hits,
    maxGradNorm: config.train.max_grad_norm,
    objective: config.train.objective,
    mine: new MineLoss({ alpha: config.train.mine_ema }),
    nwjShift: 0,
    engine:
      config.engine === 'onnx'
        ? new OnnxDenseEngine({ device: config.device, ...(config.train.threads > 0 ? { threads: config.train.threads } : {}) })
        : new TfjsDenseEngine(),
  };
}

/** The empty shard of the member at `place`, or a line saying why this run cannot partition its bank. */
function partitionedBank(config: Config, task: TrainingTask<unknown>, place: ShardPlace): KeyShard {
  const why =
    config.engine !== 'onnx'
      ? `--engine ${config.engine}; use --engine onnx`
      : config.train.objective !== 'infonce'
        ? `train.objective ${config.train.objective}; it partitions InfoNCE's softmax only`
        : !(task.model instanceof ClickLogModel)
          ? 'an image model; it partitions the click-log model only'
          : null;
  if (why !== null) throw new UserError(`bank.mode partitioned does not run with ${why} (or set bank.mode replicated)`);
  return new KeyShard(config.bank.size, task.model.dim, place);
}
