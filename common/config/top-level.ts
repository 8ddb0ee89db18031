import { BACKENDS } from '../backend.js';
import { int, oneOf, strOrNull } from './field.js';

/** Engines of a step's dense math (docs/architecture.md §6). */
export const ENGINES = ['tfjs', 'onnx'] as const;
/** One of {@link ENGINES}. */
export type Engine = (typeof ENGINES)[number];
/** Devices the onnx engine runs on. */
export const DEVICES = ['cpu', 'webgpu', 'cuda'] as const;

/** What the `kind` field may say; `auto` is resolved from the data path by `resolveKind`. */
export const KINDS = ['auto', 'clicklog', 'images'] as const;
/** One of {@link KINDS}. */
export type KindSetting = (typeof KINDS)[number];
/** A resolved data kind: what the trainer actually builds. */
export type DataKind = Exclude<KindSetting, 'auto'>;

/** The fields outside any section: what to train on, with what, and where the run goes. */
export const TOP_LEVEL = {
  kind: oneOf(KINDS, {
    default: 'auto',
    doc: 'What `data` holds: clicklog (a click-log file), images (a directory of IDX files) or auto (a directory means images, anything else a click log).',
    flag: { name: 'kind' },
  }),
  data: strOrNull({
    default: null,
    doc: 'Path of the training data: a click-log file (TSV or JSONL) or a directory of IDX image files, relative to the working directory. null: none configured (pass --data).',
    flag: { name: 'data', arg: 'FILE' },
  }),
  backend: oneOf(BACKENDS, {
    default: 'wasm',
    doc: 'TensorFlow.js compute backend. wasm is built in; cpu is the slow reference; tensorflow and tensorflow-gpu need @tensorflow/tfjs-node(-gpu), which are not in the default install.',
    flag: { name: 'backend' },
  }),
  engine: oneOf(ENGINES, {
    default: 'onnx',
    doc: 'Engine of the dense math (towers, objective and its gradient, critic scores): onnx (ONNX Runtime on `device`, every model and objective as graphs) or tfjs (TensorFlow.js on `backend`, the reference).',
    flag: { name: 'engine' },
  }),
  device: oneOf(DEVICES, {
    default: 'cpu',
    doc: "Where the onnx engine runs: cpu (in the npm package), webgpu (a GPU with Vulkan) or cuda (ONNX Runtime's CUDA provider, installed by its install script as the GPU image does).",
    flag: { name: 'device' },
  }),
  seed: int({
    ge: 0,
    le: 4294967295,
    default: 1,
    doc: "Seed of every random choice (initialisation, data order, augmentation), so a run can be repeated; 32 bits because that is the generator's state.",
  }),
  run_dir: strOrNull({
    default: null,
    doc: 'Directory for checkpoints and the run log, relative to the working directory. null: the trainer picks runs/<kind>-<timestamp>.',
    flag: { name: 'run-dir', arg: 'DIR' },
  }),
};
