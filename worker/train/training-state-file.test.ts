// Checkpoints are checked by shape, not only by hash: a crafted checkpoint with a valid SHA-256 but
// arrays or meta that do not fit the model and config is one line, and changes nothing.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import test from 'node:test';
import { type CheckpointArray, type CheckpointContents, decodeCheckpoint, encodeCheckpoint } from '../../common/checkpoint-file.js';
import { defaultConfig } from '../../common/config/mod.js';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { UserError } from '../../common/user-error.js';
import { tempDir, useTestBackend } from '../../testing/test-helpers.js';
import { openBankTransport } from '../bank/open-bank-transport.js';
import { ClickLogTask } from './clicklog-task.js';
import { contrastiveStep } from './contrastive-step.js';
import { createStepContext } from './step-context.js';
import { applyTrainingState, trainingStateContents } from './training-state-file.js';
import { replicatedBank } from '../bank/member-bank.js';

const B = 16;

/** A mutation of a valid checkpoint's contents, and what its one-line error must say. */
type Craft = [name: string, mutate: (c: { meta: Record<string, unknown>; tensors: Record<string, CheckpointArray> }) => void, error: RegExp];

function retyped(a: CheckpointArray): CheckpointArray {
  return a.dtype === 'float32'
    ? { dtype: 'int32', shape: a.shape, data: new Int32Array(a.data.length) }
    : { dtype: 'float32', shape: a.shape, data: new Float32Array(a.data.length) };
}

function resized(a: CheckpointArray, length: number): CheckpointArray {
  const data = a.dtype === 'float32' ? new Float32Array(length) : new Int32Array(length);
  return { dtype: a.dtype, shape: [length], data } as CheckpointArray;
}

test('a crafted checkpoint with a valid hash is one line naming what does not fit, and applies nothing', async (t) => {
  await useTestBackend();
  const dir = tempDir(t);
  const config = defaultConfig();
  config.data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(config.data, { queries: 600, sites: 80, seed: 5 });
  Object.assign(config.clicklog, { hash_buckets: 1 << 10, embedding_dim: 8, hidden_dim: 8, output_dim: 4 });
  Object.assign(config.train, { batch: B });
  Object.assign(config.bank, { size: 40 });
  const open = async () => {
    const task = await ClickLogTask.load(config);
    const transport = await openBankTransport(config, task.model, { job: 'test', runId: 'r', bankKey: randomBytes(32), clientName: 't' });
    t.after(() => transport.close());
    return { task, ctx: createStepContext(config, task, transport) };
  };
  const source = await open();
  for (let step = 1; step <= 3; step++) await contrastiveStep(source.task.model, source.task.batchAt((step - 1) * B, B), step, source.ctx, false);
  // As a logged step would leave it: the NWJ bound's shift travels with the state.
  source.ctx.nwjShift = -1.25;
  const valid = trainingStateContents(3, 3 * B, source.task, source.ctx, config, replicatedBank(source.ctx.bank));
  const target = await open();
  const fingerprint = () =>
    createHash('sha256')
      .update(target.task.model.online.values)
      .update(target.task.model.queryTable.table)
      .update(target.ctx.adam.m)
      .update(target.ctx.bank.digest())
      .digest('hex');
  const before = fingerprint();

  const arrays = Object.keys(valid.tensors).filter((n) => !n.startsWith('bank.pending'));
  const crafts: Craft[] = [
    ...arrays.flatMap((name): Craft[] => [
      [
        `${name} of the other dtype`,
        (c) => {
          c.tensors[name] = retyped(c.tensors[name]!);
        },
        new RegExp(`${name.replace('.', '\\.')} is \\w+ \\[\\d+(, \\d+)?\\], this run needs`),
      ],
      [
        `${name} half as long`,
        (c) => {
          c.tensors[name] = resized(c.tensors[name]!, c.tensors[name]!.data.length >> 1);
        },
        /this run needs/,
      ],
      [
        `${name} one longer`,
        (c) => {
          c.tensors[name] = resized(c.tensors[name]!, c.tensors[name]!.data.length + 1);
        },
        /this run needs/,
      ],
      [
        `${name} missing`,
        (c) => void delete c.tensors[name],
        // The site ID rows' absence names the switch that leaves them out.
        new RegExp(
          `the checkpoint has no ${name.replace('.', '\\.')}${name === 'table.site_id' ? ' \\(written with clicklog\\.site_ids off; set it off to resume it\\)' : ''}$`,
        ),
      ],
    ]),
    [
      'a non-numeric step',
      (c) => {
        c.meta.step = 'x';
      },
      /meta field step must be a non-negative integer, got "x"$/,
    ],
    [
      'a negative step',
      (c) => {
        c.meta.step = -1;
      },
      /meta field step must be a non-negative integer, got -1$/,
    ],
    [
      'a fractional position',
      (c) => {
        c.meta.position = 1.5;
      },
      /meta field position must be a non-negative integer, got 1\.5$/,
    ],
    [
      'a huge adam_t',
      (c) => {
        c.meta.adam_t = 1e300;
      },
      /meta field adam_t must be a non-negative integer/,
    ],
    [
      'a negative MINE average',
      (c) => {
        c.meta.mine_ema = -1;
      },
      /meta field mine_ema must be null or a positive number, got -1$/,
    ],
    [
      'an NWJ shift as text',
      (c) => {
        c.meta.nwj_shift = '0';
      },
      /meta field nwj_shift must be a finite number, got "0"$/,
    ],
    [
      'params of another model',
      (c) => {
        c.meta.params = 'q.w0:2x2';
      },
      /written by a model of another shape \(q\.w0:2x2\)$/,
    ],
    ['no bank', (c) => void delete c.meta.bank, /meta field bank must be an object, got undefined$/],
    [
      'a bank head as text',
      (c) => {
        (c.meta.bank as Record<string, unknown>).head = '0';
      },
      /meta field bank\.head must be a non-negative integer, got "0"$/,
    ],
    [
      'a bank head past the ring',
      (c) => {
        (c.meta.bank as Record<string, unknown>).head = 40;
      },
      /bank position head=40 filled=40 does not fit a ring of 40$/,
    ],
    [
      'another bank size',
      (c) => {
        (c.meta.bank as Record<string, unknown>).capacity = 41;
      },
      /the checkpoint's bank holds 41 keys, this run's bank\.size is 40$/,
    ],
    [
      'another key width',
      (c) => {
        (c.meta.bank as Record<string, unknown>).dim = 5;
      },
      /bank keys have 5 dimensions, this model's 4$/,
    ],
    [
      'pending headers that are not a list',
      (c) => {
        (c.meta.bank as Record<string, unknown>).pending = 'x';
      },
      /meta field bank\.pending must be a list, got "x"$/,
    ],
    [
      'a pending header claiming a huge count',
      (c) => {
        (c.meta.bank as Record<string, unknown>).pending = [{ step: 3, producer: 0, generation: 1, world: 1, count: 2 ** 40 }];
      },
      /pending bank keys do not match their headers$/,
    ],
    [
      'a pending header with a negative producer',
      (c) => {
        (c.meta.bank as Record<string, unknown>).pending = [{ step: 3, producer: -1, generation: 1, world: 1, count: 0 }];
      },
      /meta field bank\.pending\[0\]\.producer must be a non-negative integer, got -1$/,
    ],
  ];
  assert.ok(crafts.length > 40);
  for (const [name, mutate, error] of crafts) {
    const crafted = { meta: structuredClone(valid.meta) as Record<string, unknown>, tensors: { ...valid.tensors } };
    mutate(crafted);
    // Written and read back as a file: the hash is valid, the contents are not ours.
    const bytes = encodeCheckpoint(crafted as CheckpointContents);
    assert.throws(
      () => applyTrainingState(decodeCheckpoint(bytes, 'crafted'), 'crafted', target.task, target.ctx),
      (err: Error) => {
        assert.ok(err instanceof UserError, `${name}: a UserError, not ${err.name}: ${err.message}`);
        assert.match(err.message, /^crafted: /, name);
        assert.doesNotMatch(err.message, /\n/, `${name}: one line`);
        assert.match(err.message, error, name);
        return true;
      },
    );
    assert.equal(fingerprint(), before, `${name}: nothing was applied`);
  }
  // A run without site ID rows refuses a checkpoint that has them, rather than dropping them.
  const textOnly = { ...config, clicklog: { ...config.clicklog, site_ids: false } };
  const other = await ClickLogTask.load(textOnly);
  const otherCtx = createStepContext(textOnly, other, target.ctx.transport);
  assert.throws(
    () => applyTrainingState(decodeCheckpoint(encodeCheckpoint(valid), 'with ids'), 'with ids', other, otherCtx),
    /with ids: the checkpoint holds table\.site_id, written with clicklog\.site_ids on; this run has it off$/,
  );
  // The valid one applies, and then the target is the source.
  const restored = applyTrainingState(decodeCheckpoint(encodeCheckpoint(valid), 'valid'), 'valid', target.task, target.ctx);
  assert.deepEqual(restored, { step: 3, position: 3 * B });
  assert.deepEqual(target.task.model.online.values, source.task.model.online.values);
  assert.equal(target.ctx.bank.digest(), source.ctx.bank.digest());
  assert.equal(target.ctx.nwjShift, -1.25);
});
