import type { ParamSet } from '../model/param-set.js';

/** Name of the learnable log logit scale (CLIP) inside a model's ParamSet. */
export const LOGIT_SCALE = 'logit_scale';

/** Where `params` keeps the learned log logit scale, or −1 when the temperature is fixed. */
function logitScaleOffset(params: ParamSet): number {
  const i = params.specs.findIndex((s) => s.name === LOGIT_SCALE);
  return i < 0 ? -1 : params.offsets[i]!;
}

/** Whether `params` learns the temperature. */
export function learnsTemperature(params: ParamSet): boolean {
  return logitScaleOffset(params) >= 0;
}

/** The step's logit scale 1/τ: exp of the learned log scale in float32 (as a graph computes it), else `fixedScale`. */
export function logitScale(params: ParamSet, fixedScale: number): number {
  const off = logitScaleOffset(params);
  return off < 0 ? fixedScale : Math.fround(Math.exp(params.values[off]!));
}

/** CLIP clamps the learned logit scale at `maxScale` (100) after each update. */
export function clampLogitScale(params: ParamSet, maxScale: number): void {
  const off = logitScaleOffset(params);
  if (off >= 0) params.values[off] = Math.min(params.values[off]!, Math.log(maxScale));
}
