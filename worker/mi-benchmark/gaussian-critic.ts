import * as tf from '@tensorflow/tfjs-core';
import { linear, linearFixedInput } from '../../common/linear.js';
import type { Rng } from '../../common/random.js';
import { mlp, mlpSpecs } from '../model/mlp.js';
import { ParamSet } from '../model/param-set.js';

/** The critics of Poole et al. 2019: separable T(x,y) = g(x)·h(y), or an MLP on the pair [x; y]. */
export const CRITICS = ['separable', 'concat'] as const;
export type CriticKind = (typeof CRITICS)[number];

/** Hidden width and layers of every critic MLP (Poole et al.: 2 hidden layers of 256, embeddings of 32). */
const HIDDEN = 256;
const EMBED = 32;

/**
 * A critic over a batch of n pairs, scoring all n² (x_i, y_j): positives on the diagonal. Its
 * parameters live in one flat ParamSet so Adam and the tests work on plain arrays.
 */
export class GaussianCritic {
  readonly params: ParamSet;

  constructor(
    readonly kind: CriticKind,
    readonly dim: number,
    rng: Rng,
  ) {
    const specs =
      kind === 'separable'
        ? [...mlpSpecs('g', [dim, HIDDEN, HIDDEN, EMBED]), ...mlpSpecs('h', [dim, HIDDEN, HIDDEN, EMBED])]
        : mlpSpecs('f', [2 * dim, HIDDEN, HIDDEN, 1]);
    this.params = ParamSet.glorot(specs, rng);
  }

  /** The n×n score matrix for x, y (n×d each) with parameter tensors `p` (differentiable in `p`). */
  scores(p: ReadonlyMap<string, tf.Tensor>, x: Float32Array, y: Float32Array, n: number): tf.Tensor2D {
    const d = this.dim;
    if (this.kind === 'separable') {
      const gx = mlp(tf.tensor2d(x, [n, d]), p, 'g', 3);
      const hy = mlp(tf.tensor2d(y, [n, d]), p, 'h', 3);
      return linear(gx, tf.transpose(hy));
    }
    // Every pair (i, j) as one row [x_i; y_j], built on the host: the input needs no gradient.
    const pairs = new Float32Array(n * n * 2 * d);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const row = (i * n + j) * 2 * d;
        pairs.set(x.subarray(i * d, (i + 1) * d), row);
        pairs.set(y.subarray(j * d, (j + 1) * d), row + d);
      }
    }
    const first = tf.relu(tf.add(linearFixedInput(tf.tensor2d(pairs, [n * n, 2 * d]), p.get('f.w0') as tf.Tensor2D), p.get('f.b0')!)) as tf.Tensor2D;
    return tf.reshape(mlp(first, p, 'f', 3, 1), [n, n]) as tf.Tensor2D;
  }
}
