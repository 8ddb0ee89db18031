// The image model's InfoNCE step as one ONNX graph against the tfjs engine: the same weights, views,
// bank and bias give the same loss and the same gradient of every dense parameter.
import assert from 'node:assert/strict';
import test from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { infonceBankLoss } from '../../../../common/infonce-bank-loss.js';
import { Rng } from '../../../../common/random.js';
import { expectArraysClose, useTestBackend } from '../../../../testing/test-helpers.js';
import { KeyBank } from '../../../bank/key-bank.js';
import { logitBias } from '../../../bank/logit-bias.js';
import { im2col } from '../../../image/im2col.js';
import { LOGIT_SCALE } from '../../../train/contrastive-step.js';
import { ImageModel } from '../../../train/image-model.js';
import { imageTrainingGraph } from './image-training-graph.js';

const B = 6;
const K = 20;
const SIDE = 12;

for (const learnable of [false, true]) {
  test(`image InfoNCE step, ${learnable ? 'learnable' : 'fixed'} temperature: the ONNX graph gives the tfjs engine's loss and gradients`, async () => {
    await useTestBackend();
    const rng = new Rng(learnable ? 2 : 1);
    const model = new ImageModel({
      rows: SIDE,
      cols: SIDE,
      channels: 3,
      hiddenDim: 10,
      outputDim: 5,
      momentum: 0.99,
      initialScale: 1 / 0.2,
      learnableTemperature: learnable,
      seed: 9,
    });
    const view = () => Float32Array.from({ length: B * SIDE * SIDE }, () => rng.next());
    const bank = new KeyBank(K, model.dim);
    bank.enqueue({
      keys: model.momentumKeys({ indices: new Int32Array(B), query: view(), key: view() }),
      ids: new Int32Array(B).fill(-1),
      step: 1,
      producer: 0,
    });
    const batch = { indices: Int32Array.from({ length: B }, (_, i) => i), query: view(), key: view() };
    const keysData = model.momentumKeys(batch);
    const bias = logitBias(bank, { positiveIds: model.positiveIds(batch), logQ: null, inBatchNegatives: false, maskAccidentalHits: true });
    const fixedScale = 1 / 0.2;

    const params = model.online.tensors();
    const keys = tf.tensor2d(keysData, [B, model.dim]);
    const bankT = bank.tensors();
    const xs = [...params.values()];
    const { value, grads } = tf.engine().gradients(
      () => {
        const enc = model.encode(params, [], keys, batch);
        const scale = learnable ? (tf.exp(params.get(LOGIT_SCALE)!).reshape([]) as tf.Scalar) : tf.scalar(fixedScale);
        return infonceBankLoss(enc.q, enc.kpos, scale, bankT, tf.tensor2d(bias, [B, B + K]), false);
      },
      xs,
      undefined,
      true,
    );

    const patches = im2col(batch.query, B, SIDE, SIDE, 5, 2, 2);
    const [mapRows, mapCols] = [SIDE / 2, SIDE / 2];
    const graph = imageTrainingGraph({
      batch: B,
      bank: K,
      mapRows,
      mapCols,
      channels: 3,
      hiddenDim: 10,
      outputDim: model.dim,
      learnableTemperature: learnable,
    });
    assert.deepEqual(graph.params, [...params.keys()], 'the graph takes the parameters in the ParamSet order');
    const session = await ort.InferenceSession.create(graph.model, { intraOpNumThreads: 1 });
    const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
    const feeds: Record<string, ort.Tensor> = {
      patches: f32(patches.data.subarray(0, B * mapRows * mapCols * 25), [B * mapRows * mapCols, 25]),
      keys: f32(keysData, [B, model.dim]),
      bank: f32(bank.keys, [K, model.dim]),
      bias: f32(bias, [B, B + K]),
      ...(learnable ? {} : { scale: f32(Float32Array.of(fixedScale), []) }),
    };
    model.online.specs.forEach((spec, i) => {
      const off = model.online.offsets[i]!;
      feeds[spec.name] = f32(model.online.values.slice(off, off + spec.shape.reduce((n, x) => n * x, 1)), [...spec.shape]);
    });
    const out = await session.run(feeds);
    await session.release();
    const [loss, , ...onnxGrads] = graph.outputs.map((name) => out[name]!.data as Float32Array);
    expectArraysClose(loss!, value.dataSync(), { atol: 1e-5, rtol: 1e-5 });
    for (const [i, grad] of grads.entries()) {
      const expected = grad.dataSync();
      assert.ok(
        expected.some((x) => x !== 0),
        `${graph.params[i]}: the reference gradient is not all zeros`,
      );
      expectArraysClose(onnxGrads[i]!, expected, { atol: 1e-5, rtol: 2e-4 });
    }
    tf.dispose([value, ...grads, ...params.values(), keys, bankT.keys, bankT.keysT]);
  });
}
