import * as tf from '@tensorflow/tfjs-core';
import { identity } from './linear.js';

/** The memory bank as the loss sees it: K keys in both layouts so that every product is a plain matMul. */
export interface BankTensors {
  /** Bank keys, K×d (unit rows). */
  keys: tf.Tensor2D;
  /** The same keys transposed, d×K. */
  keysT: tf.Tensor2D;
}

/**
 * Mean InfoNCE cross-entropy of B anchors against the candidates [their B positives; the K bank keys].
 *
 * Logits are S = scale·q·[kpos; bank]ᵀ + bias (B×(B+K)); row i's positive is column i. `bias` carries
 * the logQ correction and the masks (a large negative value removes a candidate: other rows' positives
 * in MoCo mode, accidental hits, empty bank slots). The gradient is written by hand so the step costs
 * two plain matMuls and one softmax over the B×(B+K) matrix, and never materialises P − onehot:
 *   dL/dq      = scale/B · (P·keys − kpos)
 *   dL/dkpos   = scale/B · (P[:, :B]ᵀ·q − q)   (skipped for constant positives)
 *   dL/dscale  = 1/B · Σ_i q_i·(P·keys − kpos)_i
 */
export function infonceBankLoss(
  q: tf.Tensor2D,
  kpos: tf.Tensor2D,
  scale: tf.Scalar,
  bank: BankTensors,
  bias: tf.Tensor2D,
  /** False when the positives are constants (momentum keys): their gradient is then not computed. */
  trainPositives = true,
): tf.Scalar {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [qIn, kIn, sIn, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const qq = qIn as tf.Tensor2D;
    const kk = kIn as tf.Tensor2D;
    const b = qq.shape[0];
    const keysT = tf.concat2d([tf.transpose(kk), bank.keysT], 1);
    const logits = tf.add(tf.mul(tf.matMul(qq, keysT), sIn), bias) as tf.Tensor2D;
    const p = tf.softmax(logits) as tf.Tensor2D;
    const pPos = tf.slice(p, [0, 0], [b, b]);
    const diag = tf.sum(tf.mul(pPos, identity(b)), 1);
    // Clamp keeps log finite when a positive's probability underflows.
    const value = tf.neg(tf.mean(tf.log(tf.maximum(diag, 1e-30)))) as tf.Scalar;
    save([qq, kk, sIn, p, pPos]);
    return {
      value,
      gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) => {
        const [sq, sk, ss, sp, spPos] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Scalar, tf.Tensor2D, tf.Tensor2D];
        const keys = tf.concat2d([sk, bank.keys], 0);
        const resid = tf.sub(tf.matMul(sp, keys), sk);
        const coef = tf.div(tf.mul(dy, ss), b);
        return [
          tf.mul(resid, coef),
          trainPositives ? tf.mul(tf.sub(tf.matMul(tf.transpose(spPos), sq), sq), coef) : tf.zerosLike(sk),
          tf.div(tf.mul(tf.sum(tf.mul(sq, resid)), dy), b),
        ];
      },
    };
  });
  return op(q, kpos, scale) as tf.Scalar;
}

/** Critic scores in the queue layout (B×(1+n)): column 0 the positive, then n bank keys; for bound values. */
export function queueCriticScores(
  q: tf.Tensor2D,
  kpos: tf.Tensor2D,
  scale: tf.Scalar,
  bank: BankTensors,
  posBias: tf.Tensor2D,
  negBias: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => {
    const pos = tf.add(tf.mul(tf.sum(tf.mul(q, kpos), 1, true), scale), posBias);
    const neg = tf.add(tf.mul(tf.matMul(q, bank.keysT), scale), negBias);
    return tf.concat2d([pos as tf.Tensor2D, neg as tf.Tensor2D], 1);
  });
}
