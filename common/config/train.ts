import { int, num, numOrNull, oneOf, section, strOrNull, type SectionValue } from './field.js';

/** Training objectives (docs/architecture.md §1); every run reports all of their bounds, only this one is optimised. */
export const OBJECTIVES = ['infonce', 'nwj', 'dv', 'mine', 'jsd'] as const;
/** One of {@link OBJECTIVES}. */
export type Objective = (typeof OBJECTIVES)[number];

export const TRAIN = section('Optimisation loop.', {
  steps: int({ ge: 1, default: 600, doc: 'Optimizer steps to run, one batch per worker each.', flag: { name: 'steps', arg: 'N' } }),
  batch: int({
    ge: 2,
    le: 65536,
    default: 256,
    doc: 'Anchors per step (B), each with its positive. At least 2 because the NWJ, DV and JSD estimators need off-diagonal pairs inside the batch.',
    flag: { name: 'batch', arg: 'N' },
  }),
  lr: num({ gt: 0, default: 0.002, doc: 'Adam learning rate of the dense weights (towers, heads).' }),
  sparse_lr: num({
    gt: 0,
    default: 0.05,
    doc: 'Row-wise Adagrad learning rate of the sparse embedding tables; larger than lr because a row is updated only in the steps whose batch contains its id.',
  }),
  objective: oneOf(OBJECTIVES, {
    default: 'infonce',
    doc: 'The objective that is optimised: infonce (MoCo/CPC), nwj, dv, mine or jsd. Every step reports all of their bounds whichever is trained.',
  }),
  mine_ema: num({
    gt: 0,
    le: 1,
    default: 0.01,
    doc: "Rate (per step) of MINE's moving average of the denominator, which de-biases MINE's gradient; used only when objective is mine.",
  }),
  log_every: int({ ge: 1, default: 10, doc: 'Steps between progress lines on the console and in the run log.' }),
  checkpoint_every: int({ ge: 0, default: 0, doc: 'Steps between checkpoints; 0 writes one only at the end of the run.' }),
  resume: strOrNull({
    default: null,
    doc: 'Checkpoint file to resume from; null starts a fresh run.',
    flag: { name: 'resume', arg: 'CHECKPOINT' },
  }),
  max_grad_norm: numOrNull({
    gt: 0,
    default: 5,
    doc: "Clip the dense gradient's global L2 norm to this before each step, so that one bad batch cannot wreck the towers; null disables clipping.",
  }),
  threads: int({
    ge: 0,
    le: 1024,
    default: 0,
    doc: "Threads the onnx engine's CPU operators use; 0: this process's share of the machine's cores (all of them, or for train --workers N an Nth each).",
    flag: { name: 'threads', arg: 'N' },
  }),
  max_non_finite_steps: int({
    ge: 1,
    default: 3,
    doc: 'A step whose loss or gradient is not finite on any worker is refused (nothing applied) and counted; this many refused in a row stop the run, the last checkpoint intact.',
  }),
});

/** Optimisation loop settings (`train:`). */
export type TrainConfig = SectionValue<typeof TRAIN>;
