import type { ValuesOf } from './field.js';
import { BANK } from './bank.js';
import { CLICKLOG } from './clicklog.js';
import { EVAL } from './eval.js';
import { IMAGES } from './images.js';
import { NATS } from './nats.js';
import { TEMPERATURE } from './temperature.js';
import { TLS } from './tls.js';
import { TOP_LEVEL } from './top-level.js';
import { TRAIN } from './train.js';

/** Every field of a run configuration; this order is the order of `infobound config` and of the config's JSON. */
export const CONFIG = {
  ...TOP_LEVEL,
  train: TRAIN,
  bank: BANK,
  temperature: TEMPERATURE,
  clicklog: CLICKLOG,
  images: IMAGES,
  eval: EVAL,
  tls: TLS,
  nats: NATS,
};

/** A complete, validated run configuration. Field names are the YAML names. */
export type Config = ValuesOf<typeof CONFIG>;
