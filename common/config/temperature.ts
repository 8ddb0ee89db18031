import { bool, num, section, type SectionValue } from './field.js';

export const TEMPERATURE = section('Temperature tau of the critic: scores are cosine similarities divided by tau.', {
  value: num({
    gt: 0,
    default: 0.07,
    doc: 'tau (unitless), or its initial value when learnable. With unit-norm embeddings the InfoNCE value is capped at log N − log(1 + (N−1)e^(−2/tau)), so a large tau keeps the bound below log N.',
  }),
  learnable: bool({ default: false, doc: 'Learn tau as CLIP does, as the logit scale 1/tau clamped to max_logit_scale.' }),
  max_logit_scale: num({
    gt: 0,
    default: 100,
    doc: "Upper clamp of the learned logit scale 1/tau (CLIP's value), so that the logits cannot blow up.",
  }),
});

/** Critic temperature settings (`temperature:`). */
export type TemperatureConfig = SectionValue<typeof TEMPERATURE>;
