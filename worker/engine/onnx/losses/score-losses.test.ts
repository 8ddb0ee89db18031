// NWJ, DV and JSD as ONNX graphs against their tfjs losses (common/estimators-losses.ts, closed-form
// gradients): the same value and the same gradient with respect to the scores.
import test from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { dvLoss, jsdLoss, nwjLoss } from '../../../../common/estimators-losses.js';
import { Rng } from '../../../../common/random.js';
import { expectArraysClose, useTestBackend } from '../../../../testing/test-helpers.js';
import { gradients } from '../autodiff.js';
import { GraphBuilder } from '../graph-builder.js';
import { encodeModel } from '../onnx-model.js';
import { identity } from '../ops/identity.js';
import { type ScoreObjective, scoreLoss } from './score-losses.js';

const REFERENCE: Record<ScoreObjective, (s: tf.Tensor2D) => tf.Scalar> = {
  nwj: (s) => nwjLoss(s, 'first'),
  dv: (s) => dvLoss(s, 'first'),
  jsd: (s) => jsdLoss(s, 'first'),
};

for (const objective of ['nwj', 'dv', 'jsd'] as const) {
  test(`${objective}: the ONNX loss and its gradient equal the tfjs loss on the queue layout`, async () => {
    await useTestBackend();
    const [rows, cols] = [16, 65];
    const rng = new Rng(3);
    // Critic scores of a trained-ish critic: positives higher than negatives, up to a few nats.
    const scores = Float32Array.from({ length: rows * cols }, (_, i) => (i % cols === 0 ? 3 : 0) + 2 * rng.normal());
    const g = new GraphBuilder(`score-${objective}`);
    const s = g.input('scores', [rows, cols]);
    const loss = scoreLoss(g, objective, s);
    const [ds] = gradients(g, loss, [s]);
    const outputs = [loss, ds!].map((v) => identity(g, v));
    for (const o of outputs) g.output(o);
    const session = await ort.InferenceSession.create(encodeModel(g), { intraOpNumThreads: 1 });
    const out = await session.run({ scores: new ort.Tensor('float32', scores, [rows, cols]) });
    await session.release();
    const [value, grad] = outputs.map((o) => out[o.name]!.data as Float32Array);

    const st = tf.tensor2d(scores, [rows, cols]);
    const expected = REFERENCE[objective](st);
    const [expectedGrad] = tf.grads((x: tf.Tensor) => REFERENCE[objective](x as tf.Tensor2D))([st]);
    expectArraysClose(value!, expected.dataSync(), { atol: 1e-5, rtol: 1e-5 });
    expectArraysClose(grad!, expectedGrad!.dataSync(), { atol: 1e-7, rtol: 1e-4 });
    tf.dispose([st, expected, expectedGrad!]);
  });
}
