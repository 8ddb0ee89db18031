import { bool, int, num, oneOf, section, type SectionValue } from './field.js';

/** Click-log formats the `clicklog.format` field accepts (the same list as the click-log reader's). */
export const CLICKLOG_FORMATS = ['auto', 'tsv', 'jsonl'] as const;
/** One of {@link CLICKLOG_FORMATS}. */
export type ClicklogFormat = (typeof CLICKLOG_FORMATS)[number];

export const CLICKLOG = section('Two-tower query→site retrieval from a click log.', {
  format: oneOf(CLICKLOG_FORMATS, {
    default: 'auto',
    doc: 'tsv (query, site, clicks separated by tabs), jsonl (one JSON object per line) or auto (jsonl when the first non-empty line starts with "{").',
  }),
  logq_correction: bool({
    default: true,
    doc: "Subtract log Q(site), the site's probability of being sampled as a negative, from its negative logits (Yi et al. 2019), so popular sites are not over-penalised.",
  }),
  hash_buckets: int({
    powerOfTwo: true,
    ge: 1024,
    le: 16777216,
    default: 131072,
    doc: 'Rows of each hashed embedding table; a power of two so that a 32-bit hash maps onto it without bias. More rows mean fewer collisions and more memory (rows × embedding_dim × 4 bytes, twice with Adagrad state).',
  }),
  site_ids: bool({
    default: true,
    doc: 'Give every site of the training vocabulary its own embedding row (zeros at first) added to the mean of its hashed text features, so sites whose features collide in the hash tables stay apart; it costs sites × embedding_dim × 4 bytes three times (the row, its momentum copy) plus a float a site of Adagrad state. Off: text features only.',
  }),
  embedding_dim: int({ ge: 1, le: 4096, default: 64, doc: 'Floats per embedding row.' }),
  hidden_dim: int({ ge: 1, le: 16384, default: 256, doc: "Width of each tower's hidden layer." }),
  output_dim: int({ ge: 1, le: 4096, default: 128, doc: 'Width d of the output embedding (unit-normalised); the bank stores K × d floats.' }),
  site_term_group: int({
    ge: 0,
    le: 65536,
    default: 0,
    doc: 'Rows per group whose other rows are negatives of the site→query term; 0 = the whole batch. A run of W workers with batch B equals one worker with batch W·B and group B.',
  }),
  holdout: num({
    ge: 0,
    le: 0.5,
    default: 0.1,
    doc: 'Fraction of the queries held out (all their clicks) for retrieval evaluation, chosen by a hash of the query; 0 holds none out.',
  }),
  max_line_bytes: int({
    ge: 1024,
    default: 1048576,
    doc: 'Longest accepted log line in bytes; longer lines are skipped and counted, so a corrupt file cannot exhaust memory.',
  }),
  max_clicks: int({
    ge: 1,
    le: 1_000_000_000,
    default: 100_000,
    doc: 'Largest click count a row keeps (each click is one training example); larger counts are capped to it and counted, so a corrupt count cannot allocate gigabytes.',
  }),
});

/** Click-log settings (`clicklog:`). */
export type ClicklogConfig = SectionValue<typeof CLICKLOG>;
