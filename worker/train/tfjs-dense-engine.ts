import * as tf from '@tensorflow/tfjs-core';
import { criticRows } from '../../common/estimators.js';
import { estimatorLoss } from '../../common/estimators-losses.js';
import { infonceBankLoss, queueCriticScores } from '../../common/infonce-bank-loss.js';
import { linear } from '../../common/linear.js';
import { UserError } from '../../common/user-error.js';
import { logitBias, logitBiasParts } from '../bank/logit-bias.js';
import type { ContrastiveModel, EncodedBatch } from './contrastive-model.js';
import { LOGIT_SCALE } from './logit-scale.js';
import type { DenseContext, DenseEngine, DenseResult } from './dense-engine.js';

/** The dense math on TensorFlow.js (the reference engine): the model's own tensors, autodiff and hand-written loss gradients. */
export class TfjsDenseEngine implements DenseEngine {
  async momentumKeys<B>(model: ContrastiveModel<B>, batch: B, step: number): Promise<Float32Array> {
    return model.momentumKeys(batch, step);
  }

  async step<B>(
    model: ContrastiveModel<B>,
    batch: B,
    keysData: Float32Array,
    positiveIds: Int32Array,
    ctx: DenseContext,
    wantCritic: boolean,
  ): Promise<DenseResult> {
    return guardWasmHeap(ctx, positiveIds.length, () => {
      const b = positiveIds.length;
      const params = model.online.tensors();
      const inputs = model.sparseInputs(batch);
      const keys = tf.tensor2d(keysData, [b, model.dim]);
      const bankT = ctx.bank.tensors();
      const filled = ctx.bank.filled;
      const learnable = params.has(LOGIT_SCALE);
      let kept: EncodedBatch | undefined;
      let mainLoss: tf.Scalar | undefined;
      let scale = ctx.fixedScale;
      const xs = [...params.values(), ...inputs];
      const { value, grads } = tf.engine().gradients(
        () => {
          const enc = model.encode(params, inputs, keys, batch);
          kept = { q: tf.keep(enc.q), kpos: tf.keep(enc.kpos) };
          const s = learnable ? (tf.exp(params.get(LOGIT_SCALE)!).reshape([]) as tf.Scalar) : tf.scalar(ctx.fixedScale);
          scale = s.dataSync()[0]!;
          let loss: tf.Scalar;
          if (ctx.objective === 'infonce') {
            const bias = tf.tensor2d(
              logitBias(ctx.bank, { positiveIds, logQ: ctx.logQ, inBatchNegatives: ctx.inBatchNegatives, maskAccidentalHits: ctx.maskAccidentalHits }),
              [b, b + ctx.bank.capacity],
            );
            loss = infonceBankLoss(enc.q, enc.kpos, s, bankT, bias, model.trainsPositives);
          } else if (filled > 0) {
            loss = estimatorLoss(ctx.objective, criticScores(enc, s, ctx, positiveIds), 'first', ctx.mine);
          } else {
            // An empty bank has no negatives yet: the first step scores the batch against itself.
            const inBatch = tf.mul(linear(enc.q, tf.transpose(enc.kpos)), s) as tf.Tensor2D;
            loss = estimatorLoss(ctx.objective, inBatch, 'diagonal', ctx.mine);
          }
          mainLoss = tf.keep(loss);
          const aux = model.auxiliaryLoss(enc, params, inputs, batch, s);
          return aux === null ? loss : tf.add(loss, aux);
        },
        xs,
        undefined,
        true,
      );
      const loss = mainLoss!.dataSync()[0]!;
      const denseGrads = new Map<string, tf.Tensor>();
      const inputGrads: Float32Array[] = [];
      const names = [...params.keys()];
      xs.forEach((x, i) => {
        const g = grads[i] ?? tf.zerosLike(x);
        if (i < names.length) denseGrads.set(names[i]!, g);
        else inputGrads.push(g.dataSync() as Float32Array);
      });
      const grad = model.online.flattenGrads(denseGrads);
      let critic: DenseResult['critic'];
      if (wantCritic) {
        const st = tf.tidy(() => criticScores(kept!, tf.scalar(scale), ctx, positiveIds));
        critic = criticRows({ scores: st.dataSync() as Float32Array, rows: b, cols: filled + 1, layout: 'first' });
        st.dispose();
      }
      tf.dispose([value, mainLoss!, ...grads, ...params.values(), ...inputs, keys, bankT.keys, bankT.keysT, kept!.q, kept!.kpos]);
      return { loss, scale, grad, inputGrads, ...(critic !== undefined ? { critic } : {}) };
    });
  }
}

/**
 * Runs a step on the wasm backend, whose heap stops at 4 GiB: past it a kernel reads out of bounds (a
 * bank of 524,288 keys at B = 256 does in step 1), which becomes one line naming the engine that can.
 * Nothing of the run is usable after that.
 */
function guardWasmHeap<T>(ctx: DenseContext, batch: number, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof Error && err.name === 'RuntimeError' && /memory access out of bounds/.test(err.message)) {
      throw new UserError(
        `--engine tfjs: the wasm backend ran out of its 4 GiB heap (a bank of ${ctx.bank.capacity} keys at a batch of ${batch}); use --engine onnx, or a smaller bank.size`,
      );
    }
    throw err;
  }
}

/** Critic scores in the queue layout over the filled bank slots, with logQ and without masks. */
function criticScores(enc: EncodedBatch, scale: tf.Scalar, ctx: DenseContext, positiveIds: Int32Array): tf.Tensor2D {
  return tf.tidy(() => {
    const n = ctx.bank.filled;
    const d = ctx.bank.dim;
    const keys = tf.tensor2d(ctx.bank.keys.subarray(0, n * d), [n, d]);
    const parts = logitBiasParts(ctx.bank, { positiveIds, logQ: ctx.logQ, inBatchNegatives: false, maskAccidentalHits: false });
    const posBias = tf.tensor2d(parts.positive, [positiveIds.length, 1]);
    const negBias = tf.tensor2d(parts.bank.subarray(0, n), [1, n]);
    return queueCriticScores(enc.q, enc.kpos, scale, { keys, keysT: tf.transpose(keys) }, posBias, negBias);
  });
}
