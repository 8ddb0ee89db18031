// The ONNX InfoNCE-over-bank loss against the tfjs reference (common/infonce-bank-loss.ts, with its
// hand-written gradient): same operands, same value and gradients to float32 rounding.
import assert from 'node:assert/strict';
import test from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { infonceBankLoss as referenceLoss } from '../../../../common/infonce-bank-loss.js';
import { Rng } from '../../../../common/random.js';
import { expectArraysClose, useTestBackend } from '../../../../testing/test-helpers.js';
import { MASKED } from '../../../bank/logit-bias.js';
import { gradients } from '../autodiff.js';
import { GraphBuilder, type Value } from '../graph-builder.js';
import { encodeModel } from '../onnx-model.js';
import { add } from '../ops/add.js';
import { gemm } from '../ops/gemm.js';
import { identity } from '../ops/identity.js';
import { mul } from '../ops/mul.js';
import { infonceBankLoss } from './infonce-bank-loss.js';

/** n unit rows of width d. */
function unitRows(rng: Rng, n: number, d: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < d; j++) {
      out[i * d + j] = rng.normal();
      norm += out[i * d + j]! ** 2;
    }
    for (let j = 0; j < d; j++) out[i * d + j]! /= Math.sqrt(norm);
  }
  return out;
}

/** The bank block of the logits as the objective head builds it: the critic's bank scores plus their bias. */
function bankLogits(g: GraphBuilder, o: { q: Value; bank: Value; scale: Value; bankBias: Value }): Value {
  return add(g, mul(g, gemm(g, o.q, o.bank, null, { transB: true }), o.scale), o.bankBias);
}

for (const [b, k, d] of [
  [8, 32, 16],
  [32, 256, 64],
] as const) {
  test(`B=${b}, K=${k}, d=${d}: the ONNX loss and its gradients equal the tfjs reference, with logQ, masks and in-batch positives`, async () => {
    await useTestBackend();
    const rng = new Rng(b + k);
    const q = unitRows(rng, b, d);
    const kpos = unitRows(rng, b, d);
    const bank = unitRows(rng, k, d);
    const scale = 1 / 0.07;
    // Other rows' positives masked (MoCo), some bank slots masked (accidental hits, empty slots), logQ elsewhere.
    const bias = new Float32Array(b * (b + k));
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < b + k; j++)
        bias[i * (b + k) + j] = j < b ? (j === i ? 0.3 * rng.normal() : MASKED) : rng.next() < 0.1 ? MASKED : -Math.log(1e-3 + rng.next());
    }

    const g = new GraphBuilder('infonce-bank');
    const inputs = {
      q: g.input('q', [b, d]),
      kpos: g.input('kpos', [b, d]),
      bank: g.input('bank', [k, d]),
      scale: g.input('scale', []),
      batchBias: g.input('batch_bias', [b, b]),
      bankBias: g.input('bank_bias', [b, k]),
    };
    const loss = infonceBankLoss(g, { ...inputs, bankLogits: bankLogits(g, inputs) });
    const grads = gradients(g, loss, [inputs.q, inputs.kpos, inputs.scale]);
    const outputs = [loss, ...grads].map((v) => identity(g, v));
    for (const o of outputs) g.output(o);
    const session = await ort.InferenceSession.create(encodeModel(g), { intraOpNumThreads: 1 });
    const t = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
    const out = await session.run({
      q: t(q, [b, d]),
      kpos: t(kpos, [b, d]),
      bank: t(bank, [k, d]),
      scale: t(Float32Array.of(scale), []),
      batch_bias: t(
        Float32Array.from({ length: b * b }, (_, x) => bias[Math.floor(x / b) * (b + k) + (x % b)]!),
        [b, b],
      ),
      bank_bias: t(
        Float32Array.from({ length: b * k }, (_, x) => bias[Math.floor(x / k) * (b + k) + b + (x % k)]!),
        [b, k],
      ),
    });
    const [value, dq, dkpos, dscale] = outputs.map((o) => out[o.name]!.data as Float32Array);
    await session.release();

    const bankKeys = tf.tensor2d(bank, [k, d]);
    const bankT = { keys: bankKeys, keysT: tf.transpose(bankKeys) as tf.Tensor2D };
    const biasT = tf.tensor2d(bias, [b, b + k]);
    const f = (qq: tf.Tensor, kk: tf.Tensor, ss: tf.Tensor) => referenceLoss(qq as tf.Tensor2D, kk as tf.Tensor2D, ss as tf.Scalar, bankT, biasT, true);
    const args = [tf.tensor2d(q, [b, d]), tf.tensor2d(kpos, [b, d]), tf.scalar(scale)];
    const expected = f(args[0]!, args[1]!, args[2]!);
    const expectedGrads = tf.grads(f)(args);
    expectArraysClose(value!, expected.dataSync(), { atol: 1e-5, rtol: 1e-5 });
    expectArraysClose(dq!, expectedGrads[0]!.dataSync(), { atol: 1e-6, rtol: 1e-4 });
    expectArraysClose(dkpos!, expectedGrads[1]!.dataSync(), { atol: 1e-6, rtol: 1e-4 });
    expectArraysClose(dscale!, expectedGrads[2]!.dataSync(), { atol: 1e-6, rtol: 1e-4 });
    assert.ok(value![0]! > 0 && Number.isFinite(value![0]!));
    tf.dispose([expected, ...expectedGrads, ...args, bankKeys, bankT.keysT, biasT]);
  });
}

test('the bank takes no gradient nodes: it is an operand, not differentiated', () => {
  const g = new GraphBuilder('bank-is-constant');
  const inputs = {
    q: g.input('q', [4, 8]),
    kpos: g.input('kpos', [4, 8]),
    bank: g.input('bank', [16, 8]),
    scale: g.input('scale', []),
    batchBias: g.input('batch_bias', [4, 4]),
    bankBias: g.input('bank_bias', [4, 16]),
  };
  const loss = infonceBankLoss(g, { ...inputs, bankLogits: bankLogits(g, inputs) });
  const before = g.nodes.length;
  gradients(g, loss, [inputs.q]);
  const added = g.nodes.slice(before);
  assert.ok(added.length > 0);
  // The bank (16×8) gets no gradient: only q (4×8) does.
  const shapes = added.map((n) => n.output.shape.join('×'));
  assert.ok(!shapes.includes('16×8'), `gradient nodes: ${shapes.join(', ')}`);
  assert.ok(shapes.includes('4×8'));
});
