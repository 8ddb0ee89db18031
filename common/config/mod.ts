/** The run configuration: its types, defaults, loading and validation, and `infobound config`'s text. */
export type { Config } from './schema.js';
export { KINDS, ENGINES, DEVICES, type KindSetting, type DataKind, type Engine } from './top-level.js';
export { OBJECTIVES, type Objective, type TrainConfig } from './train.js';
export type { BankConfig } from './bank.js';
export type { TemperatureConfig } from './temperature.js';
export { CLICKLOG_FORMATS, type ClicklogFormat, type ClicklogConfig } from './clicklog.js';
export type { ImagesConfig, AugmentConfig } from './images.js';
export type { EvalConfig } from './eval.js';
export type { TlsConfig } from './tls.js';
export type { NatsConfig } from './nats.js';
export { CONFIG_FLAGS, flagValue, type ConfigFlagName, type ConfigOverrides } from './flags.js';
export { defaultConfig } from './defaults.js';
export { loadConfig } from './load.js';
export { validateConfig } from './validate.js';
export { resolveKind, resolveRunDir } from './resolve.js';
export { describeConfig } from './describe.js';
