import * as tf from '@tensorflow/tfjs-core';
import { rhoForMi, sampleCorrelatedGaussian } from '../../common/correlated-gaussian.js';
import { boundValues, type Estimator } from '../../common/estimators.js';
import { estimatorLoss, MineLoss } from '../../common/estimators-losses.js';
import { Rng } from '../../common/random.js';
import { Adam } from '../optim/adam.js';
import { clipByGlobalNorm } from '../optim/ema.js';
import { GaussianCritic, type CriticKind } from './gaussian-critic.js';

/** The benchmark's settings (the `bench-mi` flags). */
export interface StaircaseOptions {
  estimators: readonly Estimator[];
  /** True MI of each level, nats, in order. */
  levels: readonly number[];
  /** Pairs per batch. */
  batch: number;
  /** Training steps per level. */
  steps: number;
  critic: CriticKind;
  cubic: boolean;
  /** Dimension d of x and y (Poole et al.: 20). */
  dim: number;
  /** Adam learning rate (Poole et al.: 5e-4). */
  lr: number;
  /**
   * Clip the critic's gradient to this global L2 norm (null: never, as Poole et al.). Clipping at 10
   * was tried and made NWJ and MINE far worse at high MI: it slows the critic's correction after each
   * jump of the staircase. A non-finite gradient is skipped either way.
   */
  maxGradNorm: number | null;
  seed: number;
}

/** One estimator's figures at one MI level (the `--json` object; field names are an interface). */
export interface LevelResult {
  estimator: Estimator;
  true_mi: number;
  /** Mean and standard deviation of the finite estimates over the last half of the level's steps (NaN when none). */
  mean: number;
  std: number;
  /** Steps of that last half whose estimate was not finite (the critic's scores overflowed). */
  nonfinite: number;
  /** log(batch): the most InfoNCE can report. */
  infonce_ceiling: number;
  critic: CriticKind;
  cubic: boolean;
  batch: number;
  steps: number;
}

/** One step's estimate, for the staircase plot. */
export interface StaircasePoint {
  estimator: Estimator;
  step: number;
  true_mi: number;
  estimate: number;
}

/**
 * The MI estimate of an estimator's critic on a batch: its own bound (InfoNCE, NWJ, DV; MINE reports
 * DV). A JSD-trained critic T is not an MI value itself; as Poole et al. do, it is read through the
 * NWJ bound of T + 1, the critic NWJ's optimum takes from a JS-optimal discriminator.
 */
export function estimateOf(estimator: Estimator, scores: Float32Array, n: number): number {
  if (estimator === 'jsd') return boundValues({ scores: scores.map((s) => s + 1), rows: n, cols: n, layout: 'diagonal' }).nwj;
  const b = boundValues({ scores, rows: n, cols: n, layout: 'diagonal' });
  return estimator === 'mine' ? b.dv : b[estimator];
}

/**
 * Poole et al.'s MI staircase: for each estimator a fresh critic trains through the levels in order
 * (`steps` each, a new batch every step), and each step's estimate on its training batch is recorded.
 * `onPoint` sees every step, `onLevel` every finished (estimator, level).
 */
export async function runStaircase(
  o: StaircaseOptions,
  onLevel: (r: LevelResult) => void,
  onPoint: (p: StaircasePoint) => void = () => {},
): Promise<LevelResult[]> {
  const results: LevelResult[] = [];
  for (const [e, estimator] of o.estimators.entries()) {
    const rng = new Rng((o.seed + e * 7919) >>> 0);
    const critic = new GaussianCritic(o.critic, o.dim, rng);
    const adam = new Adam(critic.params.size, { lr: o.lr });
    const mine = new MineLoss();
    let step = 0;
    for (const mi of o.levels) {
      const rho = rhoForMi(mi, o.dim);
      const tail: number[] = [];
      for (let k = 0; k < o.steps; k++) {
        step++;
        const { x, y } = sampleCorrelatedGaussian(rng, o.batch, o.dim, rho, o.cubic);
        const params = critic.params.tensors();
        let kept: tf.Tensor2D | undefined;
        const names = [...params.keys()];
        const { value, grads } = tf.engine().gradients(
          () => {
            const s = critic.scores(params, x, y, o.batch);
            kept = tf.keep(s);
            return estimatorLoss(estimator, s, 'diagonal', mine);
          },
          [...params.values()],
          undefined,
          true,
        );
        const gradMap = new Map(names.map((name, i) => [name, grads[i]!]));
        const grad = critic.params.flattenGrads(gradMap);
        clipByGlobalNorm(grad, o.maxGradNorm);
        // A non-finite gradient would make every parameter NaN for good: skip the update instead.
        if (grad.every(Number.isFinite)) adam.apply(critic.params.values, grad);
        const scores = kept!.dataSync() as Float32Array;
        const estimate = estimateOf(estimator, scores, o.batch);
        tf.dispose([value, kept!, ...grads, ...params.values()]);
        onPoint({ estimator, step, true_mi: mi, estimate });
        if (k >= o.steps / 2) tail.push(estimate);
        // Yield now and then so that a caller's progress output (and signals) get through.
        if (step % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      const finite = tail.filter(Number.isFinite);
      const mean = finite.reduce((a, b) => a + b, 0) / finite.length;
      const std = Math.sqrt(finite.reduce((a, b) => a + (b - mean) ** 2, 0) / finite.length);
      const r: LevelResult = {
        estimator,
        true_mi: mi,
        mean,
        std,
        nonfinite: tail.length - finite.length,
        infonce_ceiling: Math.log(o.batch),
        critic: o.critic,
        cubic: o.cubic,
        batch: o.batch,
        steps: o.steps,
      };
      results.push(r);
      onLevel(r);
    }
  }
  return results;
}
