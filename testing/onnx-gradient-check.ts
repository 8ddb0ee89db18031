import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { Rng } from '../common/random.js';
import { gradients } from '../worker/engine/onnx/autodiff.js';
import { GraphBuilder, sizeOf, type Value } from '../worker/engine/onnx/graph-builder.js';
import { encodeModel } from '../worker/engine/onnx/onnx-model.js';
import { identity } from '../worker/engine/onnx/ops/identity.js';
import { mul } from '../worker/engine/onnx/ops/mul.js';
import { reduceSum } from '../worker/engine/onnx/ops/reduce-sum.js';

/** What a gradient check differentiates: graph inputs and a value computed from them. */
export interface CheckedFunction {
  inputs: Value[];
  y: Value;
}

/** Inputs drawn for a check: uniform in [lo, hi), away from kinks and domain edges where a test needs it. */
export function uniform(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
}

/**
 * Checks the reverse-mode gradient of `build`'s function against central finite differences, both
 * computed by ONNX Runtime in float64 (float32 for an operator ONNX Runtime has no float64 kernel
 * of, with a step and tolerance to match): the scalar differentiated is sum(y ⊙ w) for fixed random
 * w, so every element of y counts with its own weight.
 */
export async function checkGradient(
  name: string,
  build: (g: GraphBuilder) => CheckedFunction,
  data: Float64Array[],
  { seed = 1, floatType = 'float64' }: { seed?: number; floatType?: 'float32' | 'float64' } = {},
): Promise<void> {
  const g = new GraphBuilder(name, floatType);
  const { inputs, y } = build(g);
  const rng = new Rng(seed);
  const loss = reduceSum(g, mul(g, y, g.constant(uniform(rng, sizeOf(y.shape)), y.shape)), [], false);
  const grads = gradients(g, loss, inputs);
  // Identity gives every output a name of its own (a gradient may be a constant, or the same value twice).
  const outputs = [loss, ...grads].map((v) => identity(g, v));
  for (const o of outputs) g.output(o);
  const session = await ort.InferenceSession.create(encodeModel(g), { intraOpNumThreads: 1 });
  const run = async (values: Float64Array[]) => {
    const feeds = Object.fromEntries(
      inputs.map((x, i) => [
        x.name,
        floatType === 'float64' ? new ort.Tensor('float64', values[i]!, [...x.shape]) : new ort.Tensor('float32', Float32Array.from(values[i]!), [...x.shape]),
      ]),
    );
    const out = await session.run(feeds);
    return outputs.map((o) => Float64Array.from(out[o.name]!.data as Float32Array | Float64Array));
  };
  const [, ...analytic] = await run(data);
  const [h, atol, rtol] = floatType === 'float64' ? [1e-6, 1e-6, 1e-5] : [1e-2, 1e-3, 1e-2];
  for (const [i, x] of inputs.entries()) {
    for (let j = 0; j < data[i]!.length; j++) {
      const plus = data.map((d) => d.slice());
      const minus = data.map((d) => d.slice());
      plus[i]![j]! += h;
      minus[i]![j]! -= h;
      const fd = ((await run(plus))[0]![0]! - (await run(minus))[0]![0]!) / (2 * h);
      const got = analytic[i]![j]!;
      assert.ok(Math.abs(got - fd) <= atol + rtol * Math.abs(fd), `${name}: d/d${x.name}[${j}] is ${got}, finite differences give ${fd}`);
    }
  }
  await session.release();
}
