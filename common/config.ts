import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { UserError } from './user-error.js';
import { BACKENDS, type BackendName } from './backend.js';

/** What the `kind` field may say; `auto` is resolved from the data path by {@link resolveKind}. */
export const KINDS = ['auto', 'clicklog', 'images'] as const;
/** One of {@link KINDS}. */
export type KindSetting = (typeof KINDS)[number];
/** A resolved data kind: what the trainer actually builds. */
export type DataKind = Exclude<KindSetting, 'auto'>;

/** Training objectives (DESIGN §1); every run reports all of their bounds, only this one is optimised. */
export const OBJECTIVES = ['infonce', 'nwj', 'dv', 'mine', 'jsd'] as const;
/** One of {@link OBJECTIVES}. */
export type Objective = (typeof OBJECTIVES)[number];

/** Click-log formats the `clicklog.format` field accepts (the same list as the click-log reader's). */
export const CLICKLOG_FORMATS = ['auto', 'tsv', 'jsonl'] as const;
/** One of {@link CLICKLOG_FORMATS}. */
export type ClicklogFormat = (typeof CLICKLOG_FORMATS)[number];

/** A complete, validated run configuration. Field names are the YAML names. */
export interface Config {
  /**
   * What `data` holds: `clicklog` (a click-log file), `images` (a directory of IDX files) or `auto`
   * (a directory means images, anything else a click log; see {@link resolveKind}). Default `auto`.
   */
  kind: KindSetting;
  /**
   * Path of the training data: a click-log file (TSV or JSONL) or a directory of IDX image files,
   * relative to the working directory. `null` means none is configured (the command must supply it,
   * e.g. with `--data`). Default `null`.
   */
  data: string | null;
  /**
   * TensorFlow.js compute backend. `wasm` is built in; `cpu` is the slow reference; `tensorflow` and
   * `tensorflow-gpu` need @tensorflow/tfjs-node(-gpu), which are not in the default install. Default `wasm`.
   */
  backend: BackendName;
  /**
   * Seed of every random choice (initialisation, data order, augmentation), so a run can be repeated.
   * An unsigned 32-bit integer because the generator's state is 32 bits. Default 1.
   */
  seed: number;
  /**
   * Directory for checkpoints and the run log, relative to the working directory. `null` lets the
   * trainer pick `runs/<kind>-<timestamp>`. Default `null`.
   */
  run_dir: string | null;
  /** Optimisation loop. */
  train: TrainConfig;
  /** MoCo memory bank of negative keys. */
  bank: BankConfig;
  /** Temperature of the critic. */
  temperature: TemperatureConfig;
  /** Click-log (two-tower query→site retrieval) settings. */
  clicklog: ClicklogConfig;
  /** Image-encoder settings. */
  images: ImagesConfig;
  /** Evaluation of the learned embeddings. */
  eval: EvalConfig;
  tls: TlsConfig;
  /** NATS JetStream transport of the bank (DESIGN.md §4). */
  nats: NatsConfig;
}

/** Optimisation loop settings (`train:`). */
export interface TrainConfig {
  /** Optimizer steps to run, one batch per worker each. Default 600. */
  steps: number;
  /**
   * Anchors per step (B), each with its positive. At least 2 because the NWJ, DV and JSD estimators
   * need off-diagonal pairs inside the batch; at most 65536. Default 256.
   */
  batch: number;
  /** Adam learning rate of the dense weights (towers, heads). Default 0.002. */
  lr: number;
  /**
   * Row-wise Adagrad learning rate of the sparse embedding tables; larger than `lr` because a row is
   * updated only in the steps whose batch contains its id. Default 0.05.
   */
  sparse_lr: number;
  /** The objective that is optimised (all estimators are reported whatever it is). Default `infonce`. */
  objective: Objective;
  /**
   * Rate (per step, unitless, in (0, 1]) of MINE's moving average of the denominator, which de-biases
   * MINE's gradient; used only when `objective` is `mine`. Default 0.01.
   */
  mine_ema: number;
  /** Steps between progress lines on the console and in the run log. Default 10. */
  log_every: number;
  /** Steps between checkpoints; 0 writes one only at the end of the run. Default 0. */
  checkpoint_every: number;
  /** Checkpoint file to resume from; `null` starts a fresh run. Default `null`. */
  resume: string | null;
  /**
   * Clip the dense gradient's global L2 norm to this before each step, so that one bad batch cannot
   * wreck the towers; `null` disables clipping. Default 5.
   */
  max_grad_norm: number | null;
  /**
   * A step whose loss or gradient is not finite on any worker is refused (nothing applied) and
   * counted; this many refused in a row stop the run, the last checkpoint intact. Default 3.
   */
  max_non_finite_steps: number;
}

/** MoCo memory bank settings (`bank:`). */
export interface BankConfig {
  /**
   * Keys K in the FIFO queue of negatives, in [1, 2^20]. The InfoNCE bound never exceeds log(K+1), so a
   * larger bank raises the ceiling; it costs K × d × 4 bytes per worker. Default 4096.
   */
  size: number;
  /**
   * Momentum m of the key encoder, in [0, 1): key ← m·key + (1−m)·query after every step. Near 1 keeps
   * the queued keys consistent with each other; 0 copies the query encoder. Default 0.99.
   */
  momentum: number;
  /**
   * Do not use a bank key as a negative when its item id equals the row's positive (an accidental hit),
   * which would otherwise push the right answer away. Default true.
   */
  mask_accidental_hits: boolean;
  /** Also use the batch's other rows as negatives: K+B candidates, ceiling log(K+B). Default false. */
  in_batch_negatives: boolean;
  /**
   * Steps by which the bank may lag: step t's keys join every replica at step t + staleness, so a
   * worker need not wait for its peers' keys of the step it is computing. 0 is MoCo's synchronous
   * queue. Every replica still holds the same keys at every step. Default 0.
   */
  staleness: number;
}

/** Critic temperature settings (`temperature:`). */
export interface TemperatureConfig {
  /**
   * tau (unitless, > 0), or its initial value when learnable. With unit-norm embeddings the InfoNCE value
   * is capped at log N − log(1 + (N−1)e^(−2/tau)), so a large tau keeps the bound below log N. Default 0.07.
   */
  value: number;
  /** Learn tau as CLIP does (as the logit scale 1/tau, clamped to `max_logit_scale`). Default false. */
  learnable: boolean;
  /** Upper clamp of the learned logit scale 1/tau (CLIP's 100), so logits cannot blow up. Default 100. */
  max_logit_scale: number;
}

/** Click-log settings (`clicklog:`). */
export interface ClicklogConfig {
  /**
   * `tsv` (query, site, clicks separated by tabs), `jsonl` (one JSON object per line) or `auto` (jsonl
   * when the first non-empty line starts with `{`). Default `auto`.
   */
  format: ClicklogFormat;
  /**
   * Subtract log Q(site), the site's probability of being sampled as a negative, from its negative
   * logits (Yi et al. 2019), so popular sites are not over-penalised. Default true.
   */
  logq_correction: boolean;
  /**
   * Rows of each hashed embedding table, a power of two in [2^10, 2^24] so that a 32-bit hash maps onto
   * it without bias. More rows mean fewer collisions and more memory (rows × embedding_dim × 4 bytes,
   * twice with Adagrad state). Default 131072 (2^17).
   */
  hash_buckets: number;
  /** Floats per embedding row. Default 64. */
  embedding_dim: number;
  /** Width of each tower's hidden layer. Default 256. */
  hidden_dim: number;
  /** Width d of the output embedding (unit-normalised); the bank stores K × d floats. Default 128. */
  output_dim: number;
  /** Fraction of the queries held out, with all their clicks, for retrieval evaluation, in [0, 0.5]; 0 holds none out. Default 0.1. */
  holdout: number;
  /**
   * Rows per group whose other rows serve as negatives of the site→query term, in [0, 65536]; 0 = the
   * whole batch. A run of W workers with batch B equals one worker with batch W·B and group B.
   * Default 0.
   */
  site_term_group: number;
  /**
   * Longest accepted log line in bytes (≥ 1024); longer lines are skipped and counted, so a corrupt file
   * cannot exhaust memory. Default 1048576 (1 MiB).
   */
  max_line_bytes: number;
}

/** Image-encoder settings (`images:`). */
export interface ImagesConfig {
  /** Width of the dense hidden layer after the convolutions. Default 256. */
  hidden_dim: number;
  /** Width d of the output embedding (unit-normalised). Default 128. */
  output_dim: number;
  /** Channels of the convolution layers: more capacity, roughly quadratic compute. Default 32. */
  channels: number;
  /** The random augmentations that make the two views of an image. */
  augment: AugmentConfig;
  /** Use only the first N training images (for quick runs); 0 uses all. Default 0. */
  max_train: number;
}

/** Image augmentation settings (`images.augment:`); each view of an image draws its own. */
export interface AugmentConfig {
  /** Random translation of up to ± this many pixels (zero-pad, then crop back); 0 disables. Default 2. */
  crop_pad: number;
  /** Mirror left-right with probability 1/2. Default true. */
  flip: boolean;
  /** Add one offset drawn from [−b, b] to every pixel (pixels in [0, 1]); 0 disables. Default 0.3. */
  brightness: number;
  /** Scale pixels' distance from the image mean by a factor from [1−c, 1+c], c ≤ 1; 0 disables. Default 0.3. */
  contrast: number;
  /** Standard deviation of Gaussian noise added to every pixel (pixels in [0, 1]); 0 disables. Default 0.05. */
  noise: number;
  /** Probability of zeroing one random rectangle (random erasing, Zhong et al. 2017). Default 0.25. */
  erase: number;
}

/** Evaluation settings (`eval:`). */
export interface EvalConfig {
  /**
   * Evaluate the embeddings: weighted k-NN accuracy for images, retrieval recall/MRR on held-out queries
   * for click logs. Default true.
   */
  enabled: boolean;
  /** Neighbours that vote in the weighted k-NN classifier (the protocol MoCo and InstDisc report). Default 200. */
  knn_k: number;
  /** Temperature of the k-NN vote weights exp(similarity / t). Default 0.07. */
  knn_temperature: number;
  /** Training images embedded as the k-NN reference set (the first N). Default 10000. */
  knn_train: number;
  /** Test images classified by k-NN (the first N). Default 2000. */
  knn_test: number;
  /** Held-out click-log queries evaluated for retrieval at most, which bounds evaluation time. Default 5000. */
  max_queries: number;
}

/** Flag values from the command line; each replaces one config field (see {@link CONFIG_FLAGS}). */
/** TLS of every gRPC channel of a multi-worker job (coordinator and worker-to-worker). */
export interface TlsConfig {
  /** PEM CA bundle that signed the job's certificates; null: plaintext gRPC. Default null. */
  ca: string | null;
  /** PEM certificate of this process (server side, and client side for mutual TLS). Default null. */
  cert: string | null;
  /** PEM private key of `cert`. Default null. */
  key: string | null;
  /** Servers require and verify a client certificate signed by `ca` (mutual TLS). Default true. */
  mutual: boolean;
}

/**
 * The NATS server that carries the bank's keys between workers (`nats:`). Credentials and TLS files
 * left null are taken from the environment (NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_TLS_CA,
 * NATS_TLS_CERT, NATS_TLS_KEY), so that secrets need not be in a file.
 */
export interface NatsConfig {
  /** Server URL (nats://host:port, or several separated by commas); null uses no NATS: the bank travels in-process or around the worker ring. Default null. */
  url: string | null;
  /** User name, with `password`. Default null (NATS_USER). */
  user: string | null;
  /** Password of `user`. Default null (NATS_PASSWORD). */
  password: string | null;
  /** Authentication token. Default null (NATS_TOKEN). */
  token: string | null;
  /** PEM CA bundle that signed the server's certificate: connect with TLS. Default null (NATS_TLS_CA). */
  tls_ca: string | null;
  /** PEM client certificate, for servers that verify clients. Default null (NATS_TLS_CERT). */
  tls_cert: string | null;
  /** PEM private key of `tls_cert`. Default null (NATS_TLS_KEY). */
  tls_key: string | null;
  /** How long NATS may stay unreachable (or a peer's keys missing) before the worker stops with an error, ms. Default 30000. */
  timeout_ms: number;
}

export interface ConfigOverrides {
  /** `--data`: replaces `data`. */
  data?: string;
  /** `--kind`: replaces `kind`; checked against {@link KINDS}. */
  kind?: string;
  /** `--steps`: replaces `train.steps`; a numeric string is accepted as the number it spells. */
  steps?: number | string;
  /** `--batch`: replaces `train.batch`; a numeric string is accepted. */
  batch?: number | string;
  /** `--bank-size`: replaces `bank.size`; a numeric string is accepted. */
  bankSize?: number | string;
  /** `--backend`: replaces `backend`; checked against {@link BACKENDS}. */
  backend?: string;
  /** `--nats`: replaces `nats.url`. */
  nats?: string;
}

// ---- the schema ---------------------------------------------------------------------------------

type Scalar = string | number | boolean | null;

/** Dotted paths of the leaf fields of T, e.g. "train.steps". */
type LeafPath<T, P extends string = ''> = {
  [K in keyof T & string]: T[K] extends Scalar ? `${P}${K}` : LeafPath<T[K], `${P}${K}.`>;
}[keyof T & string];

/** Dotted paths of the sections (nested objects) of T, e.g. "images.augment". */
type SectionPath<T, P extends string = ''> = {
  [K in keyof T & string]: T[K] extends Scalar ? never : `${P}${K}` | SectionPath<T[K], `${P}${K}.`>;
}[keyof T & string];

/** Type of the field of T at a dotted path. */
type ValueAt<T, P extends string> = P extends `${infer H}.${infer R}`
  ? H extends keyof T
    ? ValueAt<T[H], R>
    : never
  : P extends keyof T
    ? T[P]
    : never;

/** Interval bounds of a numeric field; absent ones are unbounded. */
interface Bounds {
  ge?: number;
  gt?: number;
  le?: number;
  lt?: number;
}
interface NumberSpec extends Bounds {
  /** `int` also requires a safe integer. */
  type: 'int' | 'number';
  /** The value must also be a power of two. */
  powerOfTwo?: true;
}
interface BoolSpec {
  type: 'bool';
}
interface StringSpec {
  type: 'string';
}
interface EnumSpec<V extends string> {
  type: 'enum';
  values: readonly V[];
}

/** The kind of check a field of TS type V gets; the compiler rejects a spec that does not fit V. */
type TypeSpec<V> = [V] extends [boolean]
  ? BoolSpec
  : [V] extends [number]
    ? NumberSpec
    : string extends V
      ? StringSpec
      : [V] extends [string]
        ? EnumSpec<V>
        : never;

/** One row of the schema table: check, default and documentation of a field of type V. */
type FieldSpec<V> = TypeSpec<NonNullable<V>> & {
  default: V;
  /** What it is, its unit and why; rendered by describeConfig (the default and range are added there). */
  doc: string;
} & (null extends V ? { nullable: true } : { nullable?: never });

/** A schema row seen at run time, whatever its field's type. */
type AnySpec = (NumberSpec | BoolSpec | StringSpec | EnumSpec<string>) & {
  default: Scalar;
  doc: string;
  nullable?: boolean;
};

/** The field table; its type makes the compiler check it covers exactly the fields of {@link Config}. */
type FieldTable = { readonly [P in LeafPath<Config>]: FieldSpec<ValueAt<Config, P>> };

// The order of this table is the order of describeConfig's output.
const FIELDS: FieldTable = {
  kind: {
    type: 'enum',
    values: KINDS,
    default: 'auto',
    doc: 'What `data` holds: clicklog (a click-log file), images (a directory of IDX files) or auto (a directory means images, anything else a click log).',
  },
  data: {
    type: 'string',
    nullable: true,
    default: null,
    doc: 'Path of the training data: a click-log file (TSV or JSONL) or a directory of IDX image files, relative to the working directory. null: none configured (pass --data).',
  },
  backend: {
    type: 'enum',
    values: BACKENDS,
    default: 'wasm',
    doc: 'TensorFlow.js compute backend. wasm is built in; cpu is the slow reference; tensorflow and tensorflow-gpu need @tensorflow/tfjs-node(-gpu), which are not in the default install.',
  },
  seed: {
    type: 'int',
    ge: 0,
    le: 4294967295,
    default: 1,
    doc: "Seed of every random choice (initialisation, data order, augmentation), so a run can be repeated; 32 bits because that is the generator's state.",
  },
  run_dir: {
    type: 'string',
    nullable: true,
    default: null,
    doc: 'Directory for checkpoints and the run log, relative to the working directory. null: the trainer picks runs/<kind>-<timestamp>.',
  },
  'train.steps': { type: 'int', ge: 1, default: 600, doc: 'Optimizer steps to run, one batch per worker each.' },
  'train.batch': {
    type: 'int',
    ge: 2,
    le: 65536,
    default: 256,
    doc: 'Anchors per step (B), each with its positive. At least 2 because the NWJ, DV and JSD estimators need off-diagonal pairs inside the batch.',
  },
  'train.lr': { type: 'number', gt: 0, default: 0.002, doc: 'Adam learning rate of the dense weights (towers, heads).' },
  'train.sparse_lr': {
    type: 'number',
    gt: 0,
    default: 0.05,
    doc: 'Row-wise Adagrad learning rate of the sparse embedding tables; larger than lr because a row is updated only in the steps whose batch contains its id.',
  },
  'train.objective': {
    type: 'enum',
    values: OBJECTIVES,
    default: 'infonce',
    doc: 'The objective that is optimised: infonce (MoCo/CPC), nwj, dv, mine or jsd. Every step reports all of their bounds whichever is trained.',
  },
  'train.mine_ema': {
    type: 'number',
    gt: 0,
    le: 1,
    default: 0.01,
    doc: "Rate (per step) of MINE's moving average of the denominator, which de-biases MINE's gradient; used only when objective is mine.",
  },
  'train.max_non_finite_steps': {
    type: 'int',
    ge: 1,
    default: 3,
    doc: 'A step whose loss or gradient is not finite on any worker is refused (nothing applied) and counted; this many refused in a row stop the run, the last checkpoint intact.',
  },
  'train.log_every': { type: 'int', ge: 1, default: 10, doc: 'Steps between progress lines on the console and in the run log.' },
  'train.checkpoint_every': {
    type: 'int',
    ge: 0,
    default: 0,
    doc: 'Steps between checkpoints; 0 writes one only at the end of the run.',
  },
  'train.resume': {
    type: 'string',
    nullable: true,
    default: null,
    doc: 'Checkpoint file to resume from; null starts a fresh run.',
  },
  'train.max_grad_norm': {
    type: 'number',
    gt: 0,
    nullable: true,
    default: 5,
    doc: "Clip the dense gradient's global L2 norm to this before each step, so that one bad batch cannot wreck the towers; null disables clipping.",
  },
  'bank.size': {
    type: 'int',
    ge: 1,
    le: 1048576,
    default: 4096,
    doc: 'Keys K in the FIFO queue of negatives. The InfoNCE bound never exceeds log(K+1), so a larger bank raises the ceiling; it costs K × output_dim × 4 bytes per worker.',
  },
  'bank.momentum': {
    type: 'number',
    ge: 0,
    lt: 1,
    default: 0.99,
    doc: 'Momentum m of the key encoder: key ← m·key + (1−m)·query after every step. Near 1 keeps the queued keys consistent with each other; 0 copies the query encoder.',
  },
  'bank.mask_accidental_hits': {
    type: 'bool',
    default: true,
    doc: "Do not use a bank key as a negative when its item id equals the row's positive (an accidental hit), which would otherwise push the right answer away.",
  },
  'bank.in_batch_negatives': {
    type: 'bool',
    default: false,
    doc: "Also use the batch's other rows as negatives: K+B candidates per row, so the ceiling becomes log(K+B).",
  },
  'bank.staleness': {
    type: 'int',
    ge: 0,
    le: 1000,
    default: 0,
    doc: "Steps by which the bank may lag: step t's keys join every replica at step t + staleness, so workers need not wait for each other's keys. 0 is MoCo's synchronous queue; replicas hold the same keys either way.",
  },
  'temperature.value': {
    type: 'number',
    gt: 0,
    default: 0.07,
    doc: 'tau (unitless), or its initial value when learnable. With unit-norm embeddings the InfoNCE value is capped at log N − log(1 + (N−1)e^(−2/tau)), so a large tau keeps the bound below log N.',
  },
  'temperature.learnable': {
    type: 'bool',
    default: false,
    doc: 'Learn tau as CLIP does, as the logit scale 1/tau clamped to max_logit_scale.',
  },
  'temperature.max_logit_scale': {
    type: 'number',
    gt: 0,
    default: 100,
    doc: "Upper clamp of the learned logit scale 1/tau (CLIP's value), so that the logits cannot blow up.",
  },
  'clicklog.format': {
    type: 'enum',
    values: CLICKLOG_FORMATS,
    default: 'auto',
    doc: 'tsv (query, site, clicks separated by tabs), jsonl (one JSON object per line) or auto (jsonl when the first non-empty line starts with "{").',
  },
  'clicklog.logq_correction': {
    type: 'bool',
    default: true,
    doc: "Subtract log Q(site), the site's probability of being sampled as a negative, from its negative logits (Yi et al. 2019), so popular sites are not over-penalised.",
  },
  'clicklog.hash_buckets': {
    type: 'int',
    powerOfTwo: true,
    ge: 1024,
    le: 16777216,
    default: 131072,
    doc: 'Rows of each hashed embedding table; a power of two so that a 32-bit hash maps onto it without bias. More rows mean fewer collisions and more memory (rows × embedding_dim × 4 bytes, twice with Adagrad state).',
  },
  'clicklog.embedding_dim': { type: 'int', ge: 1, le: 4096, default: 64, doc: 'Floats per embedding row.' },
  'clicklog.hidden_dim': { type: 'int', ge: 1, le: 16384, default: 256, doc: "Width of each tower's hidden layer." },
  'clicklog.output_dim': {
    type: 'int',
    ge: 1,
    le: 4096,
    default: 128,
    doc: 'Width d of the output embedding (unit-normalised); the bank stores K × d floats.',
  },
  'clicklog.site_term_group': {
    type: 'int',
    ge: 0,
    le: 65536,
    default: 0,
    doc: 'Rows per group whose other rows are negatives of the site→query term; 0 = the whole batch. A run of W workers with batch B equals one worker with batch W·B and group B.',
  },
  'clicklog.holdout': {
    type: 'number',
    ge: 0,
    le: 0.5,
    default: 0.1,
    doc: 'Fraction of the queries held out (all their clicks) for retrieval evaluation, chosen by a hash of the query; 0 holds none out.',
  },
  'clicklog.max_line_bytes': {
    type: 'int',
    ge: 1024,
    default: 1048576,
    doc: 'Longest accepted log line in bytes; longer lines are skipped and counted, so a corrupt file cannot exhaust memory.',
  },
  'images.hidden_dim': { type: 'int', ge: 1, le: 16384, default: 256, doc: 'Width of the dense hidden layer after the convolutions.' },
  'images.output_dim': { type: 'int', ge: 1, le: 4096, default: 128, doc: 'Width d of the output embedding (unit-normalised).' },
  'images.channels': {
    type: 'int',
    ge: 1,
    le: 1024,
    default: 32,
    doc: 'Channels of the convolution layers: more capacity, roughly quadratic compute.',
  },
  'images.augment.crop_pad': {
    type: 'int',
    ge: 0,
    default: 2,
    doc: 'Random translation of up to ± this many pixels (zero-pad, then crop back); 0 disables.',
  },
  'images.augment.flip': { type: 'bool', default: true, doc: 'Mirror left-right with probability 1/2.' },
  'images.augment.brightness': {
    type: 'number',
    ge: 0,
    default: 0.3,
    doc: 'Add one offset drawn from [−b, b] to every pixel (pixels in [0, 1]); 0 disables.',
  },
  'images.augment.contrast': {
    type: 'number',
    ge: 0,
    le: 1,
    default: 0.3,
    doc: "Scale pixels' distance from the image mean by a factor drawn from [1−c, 1+c]; at most 1 so the factor stays ≥ 0; 0 disables.",
  },
  'images.augment.noise': {
    type: 'number',
    ge: 0,
    default: 0.05,
    doc: 'Standard deviation of Gaussian noise added to every pixel (pixels in [0, 1]); 0 disables.',
  },
  'images.augment.erase': {
    type: 'number',
    ge: 0,
    le: 1,
    default: 0.25,
    doc: 'Probability of zeroing one random rectangle (random erasing, Zhong et al. 2017).',
  },
  'images.max_train': { type: 'int', ge: 0, default: 0, doc: 'Use only the first N training images (for quick runs); 0 uses all.' },
  'eval.enabled': {
    type: 'bool',
    default: true,
    doc: 'Evaluate the embeddings: weighted k-NN accuracy for images, retrieval recall/MRR on held-out queries for click logs.',
  },
  'eval.knn_k': {
    type: 'int',
    ge: 1,
    default: 200,
    doc: 'Neighbours that vote in the weighted k-NN classifier (the protocol MoCo and InstDisc report).',
  },
  'eval.knn_temperature': { type: 'number', gt: 0, default: 0.07, doc: 'Temperature of the k-NN vote weights exp(similarity / t).' },
  'eval.knn_train': { type: 'int', ge: 1, default: 10000, doc: 'Training images embedded as the k-NN reference set (the first N).' },
  'eval.knn_test': { type: 'int', ge: 1, default: 2000, doc: 'Test images classified by k-NN (the first N).' },
  'eval.max_queries': {
    type: 'int',
    ge: 1,
    default: 5000,
    doc: 'Held-out click-log queries evaluated for retrieval at most, which bounds evaluation time.',
  },
  'tls.ca': {
    type: 'string',
    nullable: true,
    default: null,
    doc: 'PEM CA bundle that signed the job certificates; with cert and key set, every gRPC channel of a multi-worker job uses TLS. null: plaintext gRPC (use a join token and a private network).',
  },
  'tls.cert': { type: 'string', nullable: true, default: null, doc: 'PEM certificate of this process, used as server and (mutual TLS) as client.' },
  'tls.key': { type: 'string', nullable: true, default: null, doc: 'PEM private key of tls.cert.' },
  'tls.mutual': { type: 'bool', default: true, doc: 'Servers require a client certificate signed by tls.ca (mutual TLS).' },
  'nats.url': {
    type: 'string',
    nullable: true,
    default: null,
    doc: 'NATS server(s) carrying the bank (nats://host:4222, comma-separated for a cluster); needs JetStream. null: the bank travels in-process or around the worker ring.',
  },
  'nats.user': { type: 'string', nullable: true, default: null, doc: 'NATS user, with nats.password; null reads NATS_USER from the environment.' },
  'nats.password': { type: 'string', nullable: true, default: null, doc: 'Password of nats.user; null reads NATS_PASSWORD from the environment.' },
  'nats.token': { type: 'string', nullable: true, default: null, doc: 'NATS authentication token; null reads NATS_TOKEN from the environment.' },
  'nats.tls_ca': { type: 'string', nullable: true, default: null, doc: "PEM CA bundle of the NATS server's certificate: connect with TLS; null reads NATS_TLS_CA." },
  'nats.tls_cert': { type: 'string', nullable: true, default: null, doc: 'PEM client certificate for a NATS server that verifies clients; null reads NATS_TLS_CERT.' },
  'nats.tls_key': { type: 'string', nullable: true, default: null, doc: 'PEM private key of nats.tls_cert; null reads NATS_TLS_KEY.' },
  'nats.timeout_ms': {
    type: 'int',
    ge: 100,
    default: 30000,
    doc: "How long NATS may stay unreachable, or a peer's keys missing, before the worker stops with an error (the last checkpoint stays intact), ms.",
  },
};

/** One comment line per section, rendered by describeConfig. */
const SECTIONS: { readonly [P in SectionPath<Config>]: string } = {
  train: 'Optimisation loop.',
  bank: 'MoCo memory bank: a FIFO queue of keys from the momentum encoder, used as negatives.',
  temperature: 'Temperature tau of the critic: scores are cosine similarities divided by tau.',
  clicklog: 'Two-tower query→site retrieval from a click log.',
  images: 'Image encoder trained on IDX files (the MNIST / Fashion-MNIST layout).',
  'images.augment': 'Random augmentations that make the two views of an image; each view draws its own.',
  eval: 'Evaluation of the learned embeddings.',
  tls: 'TLS of the coordinator and worker-to-worker gRPC channels (multi-worker runs).',
  nats: 'NATS JetStream transport of the bank: each worker publishes its keys to its own subject and keeps a replica of all.',
};

/** Which flag replaces which field; the CLI can list these in its help. */
export const CONFIG_FLAGS = {
  data: { flag: '--data', field: 'data' },
  kind: { flag: '--kind', field: 'kind' },
  steps: { flag: '--steps', field: 'train.steps' },
  batch: { flag: '--batch', field: 'train.batch' },
  bankSize: { flag: '--bank-size', field: 'bank.size' },
  backend: { flag: '--backend', field: 'backend' },
  nats: { flag: '--nats', field: 'nats.url' },
} as const satisfies { readonly [K in keyof Required<ConfigOverrides>]: { flag: string; field: LeafPath<Config> } };

// ---- the schema as a tree, which validation and rendering walk -------------------------------------

interface LeafNode {
  kind: 'leaf';
  path: string;
  spec: AnySpec;
}
interface SectionNode {
  kind: 'section';
  /** '' for the root. */
  path: string;
  children: Map<string, SchemaNode>;
}
type SchemaNode = LeafNode | SectionNode;

const ROOT = buildTree();
const LEAVES = new Map<string, LeafNode>();
collectLeaves(ROOT);

function buildTree(): SectionNode {
  const root: SectionNode = { kind: 'section', path: '', children: new Map() };
  for (const [path, spec] of Object.entries(FIELDS) as [string, AnySpec][]) {
    const parts = path.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      let child = node.children.get(part);
      if (child === undefined) {
        child = { kind: 'section', path: node.path === '' ? part : `${node.path}.${part}`, children: new Map() };
        node.children.set(part, child);
      }
      node = child as SectionNode;
    }
    node.children.set(parts[parts.length - 1]!, { kind: 'leaf', path, spec });
  }
  return root;
}

function collectLeaves(node: SectionNode): void {
  for (const child of node.children.values()) {
    if (child.kind === 'leaf') LEAVES.set(child.path, child);
    else collectLeaves(child);
  }
}

// ---- public API ------------------------------------------------------------------------------------

/** A fresh copy of the default configuration. */
export function defaultConfig(): Config {
  return defaultsOf(ROOT) as unknown as Config;
}

/**
 * Builds the run configuration: the defaults, then the YAML file at `path` when given (any subset of
 * the fields), then the flag `overrides`. Throws a one-line {@link UserError} naming the file or flag
 * for a missing or unreadable file, a YAML syntax error (with its line), an unknown field (with the
 * closest known name) or a value of the wrong type or out of range.
 */
export function loadConfig(path?: string, overrides: ConfigOverrides = {}): Config {
  const config = defaultConfig() as unknown as Record<string, unknown>;
  if (path !== undefined) {
    const where = `config ${path}`;
    const raw = readYaml(path, where);
    // An empty file is a valid config that changes nothing.
    mergeInto(config, checkSection(raw ?? {}, ROOT, true, where));
  }
  applyOverrides(config, overrides);
  return validateConfig(config);
}

/**
 * Checks that `raw` is a complete configuration (every field present, no unknown field, every value of
 * the right type and range) and returns a copy typed as {@link Config}. `origin` (a file name) is put
 * in the error message; without it the message starts with "config:".
 */
export function validateConfig(raw: unknown, origin?: string): Config {
  return checkSection(raw, ROOT, false, origin === undefined ? 'config' : `config ${origin}`) as unknown as Config;
}

/** The run directory: `run_dir`, or `runs/<kind>-<timestamp>` when the config names none. */
export function resolveRunDir(config: Pick<Config, 'kind' | 'data' | 'run_dir'>): string {
  return config.run_dir ?? join('runs', `${resolveKind(config)}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
}

/**
 * The data kind the run trains on: `kind` when it is explicit, otherwise `images` when `data` is a
 * directory and `clicklog` when it is anything else. Throws a {@link UserError} when `data` is given
 * but does not exist, or when `kind` is `auto` and there is no `data` to decide from.
 */
export function resolveKind(config: Pick<Config, 'kind' | 'data'>): DataKind {
  const { kind, data } = config;
  if (data === null) {
    if (kind === 'auto') {
      throw new UserError('no data given: set `data` in the config or pass --data (a click-log file or an IDX directory)');
    }
    return kind;
  }
  let isDirectory: boolean;
  try {
    isDirectory = statSync(data).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UserError(`data "${data}" does not exist`);
    throw new UserError(`data "${data}" cannot be read: ${code ?? (err as Error).message}`);
  }
  if (kind !== 'auto') return kind;
  return isDirectory ? 'images' : 'clicklog';
}

/**
 * Every field with its default and documentation, as a commented YAML document that parses back to
 * {@link defaultConfig}. `infobound config --print-defaults` prints it and the README embeds it.
 */
export function describeConfig(): string {
  const lines = [
    '# Infobound configuration: every field with its default value.',
    '# A config file needs only the fields it changes; flags (--data, --steps, ...) override the file.',
    '# Paths are relative to the working directory.',
  ];
  renderSection(ROOT, '', lines);
  return lines.join('\n') + '\n';
}

// ---- validation ------------------------------------------------------------------------------------

/**
 * Validates the mapping `raw` against the section `node` and returns a copy holding its known fields.
 * `partial` (a config file) allows missing fields and `null` for a section; a complete config does not.
 */
function checkSection(raw: unknown, node: SectionNode, partial: boolean, where: string): Record<string, unknown> {
  if (!isMapping(raw)) {
    const what = node.path === '' ? 'must be a mapping of fields' : `field "${node.path}" must be a mapping`;
    throw new UserError(`${where}: ${what}, got ${describeValue(raw)}`);
  }
  for (const key of Object.keys(raw)) {
    if (!node.children.has(key)) throw new UserError(`${where}: ${unknownField(node, key)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, child] of node.children) {
    if (!Object.hasOwn(raw, key)) {
      if (partial) continue;
      throw new UserError(`${where}: field "${child.path}" is missing`);
    }
    const value = raw[key];
    if (child.kind === 'section') {
      // `train:` with every line under it commented out is null in YAML: it changes nothing.
      if (partial && value === null) continue;
      out[key] = checkSection(value, child, partial, where);
    } else {
      const problem = checkValue(child.spec, value);
      if (problem !== undefined) throw new UserError(`${where}: field "${child.path}" ${problem}`);
      out[key] = value;
    }
  }
  return out;
}

/** Why `value` does not fit `spec` ("must be …, got …"), or undefined when it does. */
function checkValue(spec: AnySpec, value: unknown): string | undefined {
  let ok: boolean;
  if (value === null) ok = spec.nullable === true;
  else {
    switch (spec.type) {
      case 'bool':
        ok = typeof value === 'boolean';
        break;
      case 'string':
        ok = typeof value === 'string' && value !== '';
        break;
      case 'enum':
        ok = typeof value === 'string' && spec.values.includes(value);
        break;
      case 'int':
      case 'number':
        ok =
          typeof value === 'number' &&
          (spec.type === 'int' ? Number.isSafeInteger(value) : Number.isFinite(value)) &&
          inBounds(spec, value) &&
          (spec.powerOfTwo !== true || Number.isInteger(Math.log2(value)));
        break;
    }
  }
  return ok ? undefined : `must be ${expectation(spec)}, got ${describeValue(value)}`;
}

function inBounds(b: Bounds, x: number): boolean {
  return (
    (b.ge === undefined || x >= b.ge) &&
    (b.gt === undefined || x > b.gt) &&
    (b.le === undefined || x <= b.le) &&
    (b.lt === undefined || x < b.lt)
  );
}

/** What a field accepts, in words: "an integer in [1, 1048576]", "a number > 0 or null". */
function expectation(spec: AnySpec): string {
  let text: string;
  switch (spec.type) {
    case 'bool':
      text = 'true or false';
      break;
    case 'string':
      text = 'a non-empty string';
      break;
    case 'enum':
      text = `one of ${spec.values.map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'int':
    case 'number':
      text = (spec.powerOfTwo ? 'a power of two' : spec.type === 'int' ? 'an integer' : 'a number') + rangeText(spec);
      break;
  }
  return spec.nullable ? `${text} or null` : text;
}

function rangeText(b: Bounds): string {
  const lo = b.ge ?? b.gt;
  const hi = b.le ?? b.lt;
  if (lo !== undefined && hi !== undefined) {
    return ` in ${b.ge !== undefined ? '[' : '('}${lo}, ${hi}${b.le !== undefined ? ']' : ')'}`;
  }
  if (lo !== undefined) return b.ge !== undefined ? ` >= ${lo}` : ` > ${lo}`;
  if (hi !== undefined) return b.le !== undefined ? ` <= ${hi}` : ` < ${hi}`;
  return '';
}

/** A value as an error message shows it: strings quoted and shortened, containers by their kind. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > 60 ? `${quoted.slice(0, 56)}..."` : quoted;
  }
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a mapping';
  return String(value);
}

function isMapping(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** "unknown field "x.y"" plus a suggestion when a known name is close or the field belongs elsewhere. */
function unknownField(node: SectionNode, key: string): string {
  const path = node.path === '' ? key : `${node.path}.${key}`;
  const suggestions = suggest(node, key);
  const hint = suggestions.length === 0 ? '' : ` (did you mean ${suggestions.map((s) => `"${s}"`).join(' or ')}?)`;
  return `unknown field "${path}"${hint}`;
}

/**
 * Known names the user probably meant by `key` in `node`: the nearest sibling within edit distance 2
 * (or one that differs only in case and separators, like "logEvery"), else the same name in another
 * section (a field put at the wrong level).
 */
function suggest(node: SectionNode, key: string): string[] {
  const squash = (s: string): string => s.replace(/[-_]/g, '').toLowerCase();
  let best: SchemaNode | undefined;
  let bestDistance = 3;
  for (const [name, child] of node.children) {
    const d = squash(name) === squash(key) ? 0 : editDistance(name, key);
    if (d < bestDistance) {
      best = child;
      bestDistance = d;
    }
  }
  if (best !== undefined) return [best.path];
  return [...LEAVES.keys()].filter((p) => p.slice(p.lastIndexOf('.') + 1) === key);
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

// ---- loading and merging ---------------------------------------------------------------------------

/** Reads and parses a YAML file; errors name the file (`where`) and, for syntax, the line. */
function readYaml(path: string, where: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${where}: file not found`);
    if (code === 'EISDIR') throw new UserError(`${where}: is a directory, expected a YAML file`);
    throw new UserError(`${where}: cannot read: ${code ?? (err as Error).message}`);
  }
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error !== undefined) {
    // The library's message has the position and a code excerpt on further lines; keep one line.
    const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    const pos = error.linePos?.[0];
    const at = pos === undefined ? '' : ` at line ${pos.line}, column ${pos.col}`;
    throw new UserError(`${where}: YAML syntax error${at}: ${message}`);
  }
  try {
    return doc.toJS();
  } catch (err) {
    // e.g. an alias bomb exceeding the library's alias limit.
    throw new UserError(`${where}: ${(err as Error).message}`);
  }
}

/** Copies the fields of a validated partial config onto `target`, section by section. */
function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    if (isMapping(value)) mergeInto(target[key] as Record<string, unknown>, value);
    else target[key] = value;
  }
}

/** Sets each given flag's field, checking its value with the flag's name in the error. */
function applyOverrides(config: Record<string, unknown>, overrides: ConfigOverrides): void {
  for (const [name, { flag, field }] of Object.entries(CONFIG_FLAGS)) {
    let value: unknown = overrides[name as keyof ConfigOverrides];
    if (value === undefined) continue;
    const leaf = LEAVES.get(field)!;
    // Flags arrive as strings; a numeric field takes the number a string spells exactly.
    if ((leaf.spec.type === 'int' || leaf.spec.type === 'number') && typeof value === 'string' && NUMERIC.test(value.trim())) {
      value = Number(value);
    }
    const problem = checkValue(leaf.spec, value);
    if (problem !== undefined) throw new UserError(`${flag} ${problem}`);
    const parts = field.split('.');
    let section = config;
    for (const part of parts.slice(0, -1)) section = section[part] as Record<string, unknown>;
    section[parts[parts.length - 1]!] = value;
  }
}

/** A decimal number as a flag may spell it (no hex, no empty string, which Number() would take as 0). */
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function defaultsOf(node: SectionNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of node.children) out[key] = child.kind === 'leaf' ? child.spec.default : defaultsOf(child);
  return out;
}

// ---- rendering -------------------------------------------------------------------------------------

const WRAP = 100;

function renderSection(node: SectionNode, indent: string, lines: string[]): void {
  for (const [key, child] of node.children) {
    // A blank line before every entry but a section's first keeps each comment with its field.
    if (node.path === '' || key !== node.children.keys().next().value) lines.push('');
    if (child.kind === 'section') {
      pushComment(SECTIONS[child.path as keyof typeof SECTIONS], indent, lines);
      lines.push(`${indent}${key}:`);
      renderSection(child, indent + '  ', lines);
    } else {
      pushComment(`${child.spec.doc} Accepts ${expectation(child.spec)}.`, indent, lines);
      lines.push(`${indent}${key}: ${stringify(child.spec.default).trimEnd()}`);
    }
  }
}

/** Appends `text` as `# ` comment lines wrapped at {@link WRAP} columns. */
function pushComment(text: string, indent: string, lines: string[]): void {
  const prefix = `${indent}# `;
  let line = prefix;
  for (const word of text.split(' ')) {
    if (line.length > prefix.length && line.length + 1 + word.length > WRAP) {
      lines.push(line);
      line = prefix;
    }
    line += line.length > prefix.length ? ` ${word}` : word;
  }
  lines.push(line);
}
