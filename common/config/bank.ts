import { bool, int, num, oneOf, section, type SectionValue } from './field.js';

/** How the workers hold the bank: every key in every worker, or each worker its shard. */
export const BANK_MODES = ['replicated', 'partitioned'] as const;

export const BANK = section('MoCo memory bank: a FIFO queue of keys from the momentum encoder, used as negatives.', {
  size: int({
    ge: 1,
    le: 1048576,
    default: 4096,
    doc: 'Keys K in the FIFO queue of negatives. The InfoNCE bound never exceeds log(K+1), so a larger bank raises the ceiling; it costs K × output_dim × 4 bytes per worker.',
    flag: { name: 'bank-size', arg: 'K' },
  }),
  mode: oneOf(BANK_MODES, {
    default: 'replicated',
    doc: "replicated: every worker holds all K keys. partitioned: each worker holds about K/W of them and the softmax over the whole bank is combined across workers (Partial FC), so the bank's memory per worker falls as 1/W with the same update; InfoNCE on click logs with --engine onnx only.",
    flag: { name: 'bank-mode' },
  }),
  momentum: num({
    ge: 0,
    lt: 1,
    default: 0.99,
    doc: 'Momentum m of the key encoder: key ← m·key + (1−m)·query after every step. Near 1 keeps the queued keys consistent with each other; 0 copies the query encoder.',
  }),
  mask_accidental_hits: bool({
    default: true,
    doc: "Do not use a bank key as a negative when its item id equals the row's positive (an accidental hit), which would otherwise push the right answer away.",
  }),
  in_batch_negatives: bool({
    default: false,
    doc: "Also use the batch's other rows as negatives: K+B candidates per row, so the ceiling becomes log(K+B).",
  }),
  staleness: int({
    ge: 0,
    le: 1000,
    default: 0,
    doc: "Steps by which the bank may lag: step t's keys join every replica at step t + staleness, so workers need not wait for each other's keys. 0 is MoCo's synchronous queue; replicas hold the same keys either way.",
  }),
});

/** MoCo memory bank settings (`bank:`). */
export type BankConfig = SectionValue<typeof BANK>;
