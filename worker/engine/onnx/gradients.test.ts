// Every reverse-mode rule against central finite differences, both computed by ONNX Runtime in
// float64, on shapes that exercise broadcasting.
import assert from 'node:assert/strict';
import test from 'node:test';
import { Rng } from '../../../common/random.js';
import { checkGradient, uniform } from '../../../testing/onnx-gradient-check.js';
import { gradients } from './autodiff.js';
import { GraphBuilder, sizeOf, type Value } from './graph-builder.js';
import { add } from './ops/add.js';
import { concat } from './ops/concat.js';
import { div } from './ops/div.js';
import { exp } from './ops/exp.js';
import { expand } from './ops/expand.js';
import { gemm } from './ops/gemm.js';
import { identity } from './ops/identity.js';
import { log } from './ops/log.js';
import { logSumExp } from './ops/log-sum-exp.js';
import { matMul } from './ops/matmul.js';
import { mul } from './ops/mul.js';
import { neg } from './ops/neg.js';
import { reduceSum } from './ops/reduce-sum.js';
import { relu } from './ops/relu.js';
import { reshape } from './ops/reshape.js';
import { sigmoid } from './ops/sigmoid.js';
import { sign } from './ops/sign.js';
import { slice } from './ops/slice.js';
import { softplus } from './ops/softplus.js';
import { sqrt } from './ops/sqrt.js';
import { sub } from './ops/sub.js';
import { transpose } from './ops/transpose.js';

const rng = new Rng(7);

/** Random data for inputs of these shapes, in [lo, hi). */
function draw(shapes: number[][], lo = -1, hi = 1): Float64Array[] {
  return shapes.map((s) => uniform(rng, sizeOf(s), lo, hi));
}

/** Draws away from zero: |x| in [0.2, 1), either sign, for functions with a kink or a pole at 0. */
function awayFromZero(shapes: number[][]): Float64Array[] {
  return draw(shapes, 0.2, 1).map((d) => d.map((x) => (rng.next() < 0.5 ? -x : x)));
}

/** A check of `f` applied to inputs of `shapes`. */
function unaryOrBinary(
  name: string,
  shapes: number[][],
  f: (g: GraphBuilder, ...xs: Value[]) => Value,
  data = draw(shapes),
  floatType: 'float32' | 'float64' = 'float64',
): Promise<void> {
  return checkGradient(
    name,
    (g) => {
      const inputs = shapes.map((s, i) => g.input(`x${i}`, s));
      return { inputs, y: f(g, ...inputs) };
    },
    data,
    { floatType },
  );
}

test('Add, Sub, Mul and Div, with broadcasting on either side', async () => {
  await unaryOrBinary('add', [[3, 4], [4]], add);
  await unaryOrBinary(
    'add of [3,1] and [1,4]',
    [
      [3, 1],
      [1, 4],
    ],
    add,
  );
  await unaryOrBinary(
    'sub',
    [
      [2, 3],
      [2, 1],
    ],
    sub,
  );
  await unaryOrBinary('sub of a scalar', [[], [2, 3]], sub);
  await unaryOrBinary('mul', [[2, 3], [3]], mul);
  await unaryOrBinary(
    'div',
    [
      [2, 3],
      [2, 3],
    ],
    div,
    [...draw([[2, 3]]), ...awayFromZero([[2, 3]])],
  );
  await unaryOrBinary(
    'div by a broadcast row',
    [
      [4, 3],
      [1, 3],
    ],
    div,
    [...draw([[4, 3]]), ...awayFromZero([[1, 3]])],
  );
});

test('Identity, Neg, Relu, Sign, Exp, Log and Sqrt', async () => {
  await unaryOrBinary('identity', [[3, 2]], identity);
  await unaryOrBinary('neg', [[3, 2]], neg);
  await unaryOrBinary('relu', [[4, 3]], relu, awayFromZero([[4, 3]]));
  // sign(x)·x = |x|: its gradient is sign(x), which only the product rule gives (sign's own is 0).
  await unaryOrBinary('sign', [[5]], (g, x) => mul(g, sign(g, x!), x!), awayFromZero([[5]]));
  await unaryOrBinary('exp', [[2, 3]], exp);
  await unaryOrBinary('log', [[2, 3]], log, draw([[2, 3]], 0.5, 2));
  await unaryOrBinary('sqrt', [[2, 3]], sqrt, draw([[2, 3]], 0.5, 2));
});

test('MatMul and Gemm with every transpose and a broadcast bias', async () => {
  await unaryOrBinary(
    'matmul',
    [
      [3, 4],
      [4, 2],
    ],
    matMul,
  );
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = transA ? [4, 3] : [3, 4];
      const b = transB ? [2, 4] : [4, 2];
      await unaryOrBinary(`gemm transA=${transA} transB=${transB}`, [a, b, [2]], (g, x, w, c) => gemm(g, x!, w!, c!, { transA, transB }));
    }
  }
});

test('ReduceSum (kept or dropped axes, all axes), Transpose, Reshape and Expand', async () => {
  await unaryOrBinary('reduce-sum axis 1 kept', [[3, 4]], (g, x) => reduceSum(g, x!, [1], true));
  await unaryOrBinary('reduce-sum axis 0 dropped', [[3, 4]], (g, x) => reduceSum(g, x!, [0], false));
  await unaryOrBinary('reduce-sum of equal-sized axes', [[3, 3, 2]], (g, x) => reduceSum(g, x!, [1], false));
  await unaryOrBinary('reduce-sum of all axes', [[2, 3]], (g, x) => reduceSum(g, x!, [], false));
  await unaryOrBinary('transpose', [[2, 3, 4]], (g, x) => transpose(g, x!, [2, 0, 1]));
  await unaryOrBinary('reshape', [[2, 6]], (g, x) => reshape(g, x!, [3, 4]));
  await unaryOrBinary('expand', [[3, 1]], (g, x) => expand(g, x!, [3, 4]));
});

test('Slice (its gradient padded back with zeros), Softplus and Sigmoid', async () => {
  await unaryOrBinary('slice of columns 1–3', [[3, 5]], (g, x) => slice(g, x!, 1, 1, 4));
  await unaryOrBinary('slice of the first row', [[3, 5]], (g, x) => slice(g, x!, 0, 0, 1));
  // ONNX Runtime's CPU provider has Softplus in float32 only.
  await unaryOrBinary('softplus', [[2, 4]], softplus, draw([[2, 4]], -3, 3), 'float32');
  await unaryOrBinary('sigmoid', [[2, 4]], sigmoid, draw([[2, 4]], -3, 3));
});

test('Concat along either axis, and log-sum-exp through its stopped maximum', async () => {
  await unaryOrBinary(
    'concat rows',
    [
      [2, 3],
      [4, 3],
    ],
    (g, a, b) => concat(g, [a!, b!], 0),
  );
  await unaryOrBinary(
    'concat columns',
    [
      [3, 1],
      [3, 2],
      [3, 4],
    ],
    (g, a, b, c) => concat(g, [a!, b!, c!], 1),
  );
  // Large logits: without the shift exp would overflow in float32; the gradient is softmax either way.
  await unaryOrBinary('log-sum-exp by row', [[3, 5]], (g, x) => logSumExp(g, x!, 1), draw([[3, 5]], 40, 60));
});

test('compositions: a value used twice, a dense ReLU layer, rows scaled to unit length', async () => {
  await unaryOrBinary('x·x + x', [[2, 3]], (g, x) => add(g, mul(g, x!, x!), x!));
  await unaryOrBinary('relu(x·W + b)', [[4, 3], [3, 5], [5]], (g, x, w, b) => relu(g, gemm(g, x!, w!, b!)), [
    ...draw([
      [4, 3],
      [3, 5],
    ]),
    Float64Array.from({ length: 5 }, () => 3),
  ]);
  await unaryOrBinary('x / ‖x‖ by row', [[4, 3]], (g, x) => div(g, x!, sqrt(g, reduceSum(g, mul(g, x!, x!), [1], true))), awayFromZero([[4, 3]]));
});

test('an input the loss does not depend on gets zeros, and an operator without a rule is refused', () => {
  const g = new GraphBuilder('unrelated', 'float64');
  const x = g.input('x', [2]);
  const z = g.input('z', [3]);
  const [dx, dz] = gradients(g, reduceSum(g, exp(g, x), [], false), [x, z]);
  assert.deepEqual(dx!.shape, [2]);
  assert.deepEqual(Array.from(g.initializers.find((i) => i.value === dz)!.data as Float64Array), [0, 0, 0]);

  const h = new GraphBuilder('no-rule');
  const y = h.input('y', [2]);
  const t = h.node('Tanh', [y], [2]);
  assert.throws(() => gradients(h, reduceSum(h, t, [], false), [y]), /no gradient rule for Tanh/);
});
