import * as tf from '@tensorflow/tfjs-core';

/**
 * x·W whose gradient transposes explicitly. Autodiff's matMul gradient calls matMul with
 * transposeA/transposeB, which the wasm backend runs ~10x slower than a plain matMul (docs/architecture.md §6);
 * an explicit transpose followed by a plain matMul is nearly free by comparison.
 */
export const linear: (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dy as tf.Tensor2D)];
    },
  };
}) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** Rows scaled to unit L2 norm (eps keeps the gradient finite at zero). */
export function l2Normalize(x: tf.Tensor2D, eps = 1e-12): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), eps))));
}

/**
 * x·W for a constant x (an input that needs no gradient, like im2col patches): only W gets a gradient,
 * so the unused dx product and its transpose are never computed.
 */
export function linearFixedInput(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [wIn, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    // Saved, not closed over: the caller's tidy would dispose x before the backward pass.
    save([x]);
    return {
      value: tf.matMul(x, wIn),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.matMul(tf.transpose(saved[0] as tf.Tensor2D), dy as tf.Tensor2D)],
    };
  });
  return op(w) as tf.Tensor2D;
}

/** The n×n identity, built on the host: tf.eye goes through an Equal kernel that costs ms on wasm. */
export function identity(n: number): tf.Tensor2D {
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) data[i * n + i] = 1;
  return tf.tensor2d(data, [n, n]);
}
