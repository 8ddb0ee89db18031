// The click-log InfoNCE step as one ONNX graph against the tfjs engine: the same model, batch, bank
// and bias give the same losses and the same gradients of every dense parameter and pooled input.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { defaultConfig } from '../../../../common/config/mod.js';
import { infonceBankLoss } from '../../../../common/infonce-bank-loss.js';
import { writeSyntheticClickLog } from '../../../../common/synthetic-clicklog.js';
import { expectArraysClose, tempDir, useTestBackend } from '../../../../testing/test-helpers.js';
import { KeyBank } from '../../../bank/key-bank.js';
import { logitBias } from '../../../bank/logit-bias.js';
import { ClickLogTask } from '../../../train/clicklog-task.js';
import { siteTermMask } from '../../../train/clicklog-model.js';
import { LOGIT_SCALE } from '../../../train/contrastive-step.js';
import { clicklogTrainingGraph } from './clicklog-training-graph.js';

const B = 16;
const K = 48;

for (const learnable of [false, true]) {
  test(`click-log InfoNCE step, ${learnable ? 'learnable' : 'fixed'} temperature: the ONNX graph gives the tfjs engine's losses and gradients`, async (t) => {
    await useTestBackend();
    const dir = tempDir(t);
    const config = defaultConfig();
    config.data = join(dir, 'clicks.tsv');
    await writeSyntheticClickLog(config.data, { queries: 600, sites: 80, seed: 4 });
    Object.assign(config.clicklog, { hash_buckets: 1 << 10, embedding_dim: 8, hidden_dim: 12, output_dim: 6 });
    Object.assign(config.temperature, { learnable });
    const task = await ClickLogTask.load(config);
    const model = task.model;
    const d = model.dim;
    // A bank three quarters full of momentum keys (the rest masked as empty slots), with accidental hits.
    const bank = new KeyBank(K, d);
    for (let i = 0; i < 2; i++) {
      const earlier = task.batchAt(100 + i * B, B);
      bank.enqueue({ keys: model.momentumKeys(earlier, 1), ids: earlier.sites, step: 1, producer: 0 });
    }
    const batch = task.batchAt(0, B);
    const keysData = model.momentumKeys(batch, 3);
    const bias = logitBias(bank, { positiveIds: batch.sites, logQ: task.logQ, inBatchNegatives: false, maskAccidentalHits: true });
    const mask = siteTermMask(batch, 0);
    const fixedScale = 1 / config.temperature.value;

    // The reference: what contrastiveStep differentiates on the tfjs engine.
    const params = model.online.tensors();
    const inputs = model.sparseInputs(batch);
    const keys = tf.tensor2d(keysData, [B, d]);
    const bankT = bank.tensors();
    let main: tf.Scalar | undefined;
    const xs = [...params.values(), ...inputs];
    const { value, grads } = tf.engine().gradients(
      () => {
        const enc = model.encode(params, inputs, keys);
        const scale = learnable ? (tf.exp(params.get(LOGIT_SCALE)!).reshape([]) as tf.Scalar) : tf.scalar(fixedScale);
        main = tf.keep(infonceBankLoss(enc.q, enc.kpos, scale, bankT, tf.tensor2d(bias, [B, B + K]), false));
        return tf.add(main, model.auxiliaryLoss(enc, params, inputs, batch, scale)) as tf.Scalar;
      },
      xs,
      undefined,
      true,
    );

    const graph = clicklogTrainingGraph({
      batch: B,
      bank: K,
      embeddingDim: config.clicklog.embedding_dim,
      hiddenDim: config.clicklog.hidden_dim,
      outputDim: d,
      learnableTemperature: learnable,
    });
    assert.deepEqual(graph.params, [...params.keys()], 'the graph takes the parameters in the ParamSet order');
    const session = await ort.InferenceSession.create(graph.model, { intraOpNumThreads: 1 });
    const f32 = (data: Float32Array | Int32Array, dims: number[]) => new ort.Tensor('float32', Float32Array.from(data), dims);
    const feeds: Record<string, ort.Tensor> = {
      pooled_q: f32(inputs[0]!.dataSync() as Float32Array, [B, config.clicklog.embedding_dim]),
      pooled_s: f32(inputs[1]!.dataSync() as Float32Array, [B, config.clicklog.embedding_dim]),
      keys: f32(keysData, [B, d]),
      bank: f32(bank.keys, [K, d]),
      bias: f32(bias, [B, B + K]),
      site_mask: f32(mask, [B, B]),
      ...(learnable ? {} : { scale: f32(Float32Array.of(fixedScale), []) }),
    };
    model.online.specs.forEach((spec, i) => {
      const off = model.online.offsets[i]!;
      const size = spec.shape.reduce((n, x) => n * x, 1);
      feeds[spec.name] = f32(model.online.values.subarray(off, off + size), [...spec.shape]);
    });
    const out = await session.run(feeds);
    await session.release();
    const [onnxMain, onnxTotal, , ...onnxGrads] = graph.outputs.map((name) => out[name]!.data as Float32Array);

    expectArraysClose(onnxMain!, main!.dataSync(), { atol: 1e-5, rtol: 1e-5 });
    expectArraysClose(onnxTotal!, value.dataSync(), { atol: 1e-5, rtol: 1e-5 });
    assert.equal(onnxGrads.length, grads.length);
    for (const [i, grad] of grads.entries()) {
      const name = i < graph.params.length ? graph.params[i]! : `pooled input ${i - graph.params.length}`;
      const expected = grad.dataSync();
      assert.ok(
        expected.some((x) => x !== 0),
        `${name}: the reference gradient is not all zeros`,
      );
      expectArraysClose(onnxGrads[i]!, expected, { atol: 1e-5, rtol: 2e-4 });
    }
    tf.dispose([value, main!, ...grads, ...params.values(), ...inputs, keys, bankT.keys, bankT.keysT]);
  });
}
