import assert from 'node:assert/strict';
import test from 'node:test';
import { UserError } from '../../../common/user-error.js';
import { GraphBuilder } from './graph-builder.js';
import { GraphSession, type ONNX_DEVICES } from './graph-session.js';
import { encodeModel } from './onnx-model.js';
import { relu } from './ops/relu.js';

function reluModel(): Uint8Array {
  const g = new GraphBuilder('relu');
  g.output(relu(g, g.input('x', [3])));
  return encodeModel(g);
}

/** Runs the relu graph on `device`: the right answer, or one line that names --device cpu. */
async function runOrRefuse(device: (typeof ONNX_DEVICES)[number]): Promise<'ran' | 'refused'> {
  let session: GraphSession;
  try {
    session = await GraphSession.open(reluModel(), 'relu', { device });
  } catch (err) {
    assert.ok(err instanceof UserError, `a UserError, got ${String(err)}`);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    assert.match(err.message, new RegExp(`^--device ${device}: .*; use --device cpu$`));
    return 'refused';
  }
  const out = await session.run({ x: { data: Float32Array.of(-1, 0, 2), dims: [3] } });
  assert.deepEqual(Array.from(Object.values(out)[0]!), [0, 0, 2]);
  await session.release();
  return 'ran';
}

test('the CPU engine runs a graph', async () => {
  assert.equal(await runOrRefuse('cpu'), 'ran');
});

// Where a GPU is, these run; where none is (this CI), they fail with one line naming --device cpu.
for (const device of ['webgpu', 'cuda'] as const) {
  test(`--device ${device}: runs, or says in one line what is missing and to use --device cpu`, async () => {
    assert.ok(['ran', 'refused'].includes(await runOrRefuse(device)));
  });
}

test('bytes that are not a model, and a run with a missing input, are one line naming the graph', async () => {
  await assert.rejects(
    GraphSession.open(Uint8Array.from([1, 2, 3, 4]), 'garbage'),
    (err: Error) => err instanceof UserError && /^graph garbage: ONNX Runtime rejected it on cpu: /.test(err.message) && !err.message.includes('\n'),
  );
  const session = await GraphSession.open(reluModel(), 'relu');
  await assert.rejects(session.run({}), (err: Error) => err instanceof UserError && /^graph relu: ONNX Runtime could not run it: /.test(err.message));
  await session.release();
});
