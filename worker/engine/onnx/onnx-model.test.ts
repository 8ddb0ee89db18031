import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import * as ort from 'onnxruntime-node';
import { checkOnnxModel } from '../../../testing/onnx-checker.js';
import { tempDir } from '../../../testing/test-helpers.js';
import { gradients } from './autodiff.js';
import { GraphBuilder } from './graph-builder.js';
import { clicklogTrainingGraph } from './models/clicklog-training-graph.js';
import { encodeModel } from './onnx-model.js';
import { gemm } from './ops/gemm.js';
import { reduceSum } from './ops/reduce-sum.js';
import { relu } from './ops/relu.js';
import { transpose } from './ops/transpose.js';

/** A dense ReLU layer summed to a scalar, with its gradients: every kind of attribute and initializer. */
function layerWithGradients(): GraphBuilder {
  const g = new GraphBuilder('layer');
  const x = g.input('x', [4, 3]);
  const w = g.input('w', [3, 5]);
  const y = reduceSum(g, transpose(g, relu(g, gemm(g, x, w, g.constant([1, 2, 3, 4, 5], [5])))), [], false);
  const [dx, dw] = gradients(g, y, [x, w]);
  for (const v of [y, dx!, dw!]) g.output(v);
  return g;
}

test('the ONNX reference checker (python3-onnx, with shape inference) accepts what the builder writes', (t) => {
  const path = join(tempDir(t), 'layer.onnx');
  writeFileSync(path, encodeModel(layerWithGradients()));
  const { ir, opset, nodes } = checkOnnxModel(path);
  assert.deepEqual([ir, opset], [8, 17]);
  assert.equal(nodes, layerWithGradients().nodes.length);
});

test('the reference checker accepts a whole training graph: int32 ids, bool masks, every objective head', (t) => {
  const dir = tempDir(t);
  for (const objective of ['infonce', 'mine'] as const) {
    const graph = clicklogTrainingGraph({
      batch: 4,
      embeddingDim: 6,
      hiddenDim: 5,
      outputDim: 3,
      learnableTemperature: objective === 'infonce',
      head: { objective, bank: 7, layout: 'queue', maskHits: objective === 'infonce', logged: true },
    });
    const path = join(dir, `${objective}.onnx`);
    writeFileSync(path, graph.model);
    assert.ok(checkOnnxModel(path).nodes > 50);
  }
});

test('ONNX Runtime runs the written model: the layer and its gradients by hand', async () => {
  const session = await ort.InferenceSession.create(encodeModel(layerWithGradients()), { intraOpNumThreads: 1 });
  // x picks rows of w: every pre-activation is w's row plus the bias, so signs are known.
  const x = new ort.Tensor('float32', Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]), [4, 3]);
  const w = new ort.Tensor('float32', Float32Array.from([1, -10, 1, -10, 1, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2]), [3, 5]);
  const out = await session.run({ x, w });
  const [y, dx, dw] = session.outputNames.map((n) => Array.from(out[n]!.data as Float32Array));
  // Rows of x·w + b: [2, -8, 4, -6, 6] (rows 0 and 3), [1, 2, 3, 4, 5], [3, 4, 5, 6, 7]; ReLU keeps the positives.
  assert.deepEqual(y, [2 * (2 + 4 + 6) + 15 + 25]);
  // dy/d(x·w+b) is the ReLU mask; dx = mask · wᵀ, dw = xᵀ · mask.
  assert.deepEqual(dx, [3, 0, 6, -17, 0, 10, -17, 0, 10, 3, 0, 6]);
  assert.deepEqual(dw, [2, 0, 2, 0, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  await session.release();
});
