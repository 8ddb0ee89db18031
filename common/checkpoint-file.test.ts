import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from './user-error.js';
import { readCheckpoint, writeCheckpoint, type CheckpointArray, type CheckpointContents } from './checkpoint-file.js';
import { tempDir } from '../testing/test-helpers.js';

/** A checkpoint with every dtype, odd sizes (so padding is exercised), a scalar and an empty array. */
function sample(seed = 1): CheckpointContents {
  const weights = new Float32Array(1001);
  for (let i = 0; i < weights.length; i++) weights[i] = Math.sin(i * seed) * 1e3;
  weights.set([NaN, -0, Infinity, -Infinity, 1.4e-45], 0); // bit patterns that must survive exactly
  return {
    meta: { step: 42 * seed, config: { train: { lr: 0.002 }, data: null }, note: 'résumé ✓', cursor: [1, 2, 3] },
    tensors: {
      'tower/w': { dtype: 'float32', shape: [7, 11, 13], data: weights },
      ids: { dtype: 'int32', shape: [5], data: Int32Array.from([-2147483648, -1, 0, 1, 2147483647]) },
      mask: { dtype: 'uint8', shape: [3], data: Uint8Array.from([0, 255, 7]) },
      scale: { dtype: 'float32', shape: [], data: Float32Array.from([14.285714]) },
      empty: { dtype: 'int32', shape: [0, 4], data: new Int32Array(0) },
    },
  };
}

function bytesOf(a: CheckpointArray['data']): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Asserts that `promise` rejects with a one-line UserError matching `pattern`. */
async function rejectsUser(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `message is not one line: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

test('round trip: arrays come back bit-identical as aligned views, meta as JSON', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'ckpt.bin');
  const original = sample();
  await writeCheckpoint(path, original);
  assert.deepEqual(readdirSync(dir), ['ckpt.bin']);
  const back = await readCheckpoint(path);
  assert.deepEqual(back.meta, original.meta);
  assert.deepEqual(Object.keys(back.tensors), Object.keys(original.tensors));
  let buffer: ArrayBufferLike | undefined;
  for (const [name, array] of Object.entries(original.tensors)) {
    const got = back.tensors[name]!;
    assert.equal(got.dtype, array.dtype, name);
    assert.deepEqual(got.shape, array.shape, name);
    assert.equal(got.data.constructor, array.data.constructor, name);
    assert.ok(bytesOf(got.data).equals(bytesOf(array.data)), `${name}: bytes differ`);
    assert.equal(got.data.byteOffset % 8, 0, `${name}: view not 8-byte aligned`);
    // All arrays are views of the one buffer the file was read into: no per-array copy.
    buffer ??= got.data.buffer;
    assert.equal(got.data.buffer, buffer, `${name}: not a view of the file buffer`);
  }
  assert.equal(readFileSync(path).toString('latin1', 0, 8), 'IBCKPT01');
  // Writing again replaces the file atomically and leaves no temporary file.
  await writeCheckpoint(path, sample(2));
  assert.equal((await readCheckpoint(path)).meta.step, 84);
  assert.deepEqual(readdirSync(dir), ['ckpt.bin']);
});

test('a flipped byte anywhere is a checksum mismatch', async (t) => {
  const path = join(tempDir(t), 'ckpt.bin');
  await writeCheckpoint(path, sample());
  const good = readFileSync(path);
  const inMeta = good.indexOf('résumé');
  const inData = good.length - 100;
  for (const at of [inMeta, inData, good.length - 1]) {
    const bad = Buffer.from(good);
    bad[at]! ^= 0x01;
    writeFileSync(path, bad);
    await rejectsUser(readCheckpoint(path), new RegExp(`^checkpoint ${path}: checksum mismatch`));
  }
  // A changed digest is a mismatch too.
  const bad = Buffer.from(good);
  bad[30] = bad[30] === 0x61 ? 0x62 : 0x61;
  writeFileSync(path, bad);
  await rejectsUser(readCheckpoint(path), /checksum mismatch/);
});

test('a truncated file or one with trailing bytes is refused', async (t) => {
  const path = join(tempDir(t), 'ckpt.bin');
  await writeCheckpoint(path, sample());
  const size = readFileSync(path).length;
  for (const length of [size - 1, size - 3000, 200, 12, 5]) {
    await writeCheckpoint(path, sample());
    truncateSync(path, length);
    await rejectsUser(readCheckpoint(path), new RegExp(`^checkpoint ${path}: truncated`));
  }
  await writeCheckpoint(path, sample());
  writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([0, 0])]));
  await rejectsUser(readCheckpoint(path), new RegExp(`^checkpoint ${path}: 2 unexpected bytes after the end of the data$`));
});

test('wrong magic, another format version, a corrupt header and a missing file are named', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'ckpt.bin');
  await writeCheckpoint(path, sample());
  const good = readFileSync(path);

  writeFileSync(path, Buffer.from('{"not": "a checkpoint"}\n'));
  await rejectsUser(readCheckpoint(path), new RegExp(`^checkpoint ${path}: not an Infobound checkpoint`));
  writeFileSync(path, Buffer.alloc(0));
  await rejectsUser(readCheckpoint(path), /not an Infobound checkpoint/);

  const v2 = Buffer.from(good);
  v2.write('IBCKPT02', 0, 'latin1');
  writeFileSync(path, v2);
  await rejectsUser(readCheckpoint(path), /unsupported format "IBCKPT02" \(this build reads "IBCKPT01"\)$/);

  // Same length, so only the header's version differs.
  const headerV2 = Buffer.from(good.toString('latin1').replace('"version":1', '"version":9'), 'latin1');
  writeFileSync(path, headerV2);
  await rejectsUser(readCheckpoint(path), /unsupported version 9 \(this build reads version 1\)$/);

  const badJson = Buffer.from(good);
  badJson[12] = 0x5b; // '[' instead of '{'
  writeFileSync(path, badJson);
  await rejectsUser(readCheckpoint(path), /corrupt header/);

  await rejectsUser(readCheckpoint(join(dir, 'missing.bin')), /missing\.bin: file not found$/);
});

test('a writer that fails midway leaves the old checkpoint intact and no temporary file', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'ckpt.bin');
  await writeCheckpoint(path, sample());
  const before = readFileSync(path);

  // The second array's data getter throws after the first array is already on disk.
  let firstRead = false;
  const failing: CheckpointContents = {
    meta: { step: 99 },
    tensors: {
      a: {
        dtype: 'float32',
        shape: [1 << 20],
        get data() {
          firstRead = true;
          return new Float32Array(1 << 20).fill(3);
        },
      },
      b: {
        dtype: 'int32',
        shape: [2],
        get data(): Int32Array {
          throw new Error('device lost while reading the tensor');
        },
      },
    },
  };
  await assert.rejects(writeCheckpoint(path, failing), /device lost/);
  assert.ok(firstRead, 'the failure came after data was written');
  assert.ok(readFileSync(path).equals(before), 'the previous checkpoint changed');
  assert.deepEqual(readdirSync(dir), ['ckpt.bin']);
  assert.equal((await readCheckpoint(path)).meta.step, 42);

  // Data that does not match its declared shape or dtype is refused the same way.
  const short = { meta: {}, tensors: { x: { dtype: 'float32', shape: [4], data: new Float32Array(3) } } } as const;
  await assert.rejects(writeCheckpoint(path, short), /shape \[4\] needs 4 values, data has 3/);
  const wrongType = { meta: {}, tensors: { x: { dtype: 'int32', shape: [2], data: new Float32Array(2) } } };
  await assert.rejects(writeCheckpoint(path, wrongType as unknown as CheckpointContents), /needs a Int32Array, got Float32Array/);
  await assert.rejects(writeCheckpoint(path, { meta: { loss: NaN }, tensors: {} }), /"loss" is NaN/);
  assert.ok(readFileSync(path).equals(before));
  assert.deepEqual(readdirSync(dir), ['ckpt.bin']);

  // An I/O failure is a UserError naming the checkpoint.
  await rejectsUser(writeCheckpoint(join(dir, 'no-such-dir', 'ckpt.bin'), sample()), /no-such-dir\/ckpt\.bin: cannot write: ENOENT/);
});

test('concurrent writers to one path each leave a whole checkpoint', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'ckpt.bin');
  await Promise.all([1, 2, 3].map((seed) => writeCheckpoint(path, sample(seed))));
  const { meta } = await readCheckpoint(path);
  assert.ok([42, 84, 126].includes(meta.step as number));
  assert.deepEqual(readdirSync(dir), ['ckpt.bin']);
});

test('about 200 MB of arrays round-trip', async (t) => {
  const path = join(tempDir(t), 'big.bin');
  const n = 50 << 20; // 50 Mi float32 = 200 MiB
  const big = new Float32Array(n);
  for (let i = 0; i < n; i += 4099) big[i] = i;
  big[n - 1] = -1.5;
  await writeCheckpoint(path, { meta: { n }, tensors: { big: { dtype: 'float32', shape: [n], data: big } } });
  const back = await readCheckpoint(path);
  const got = back.tensors.big!.data;
  assert.equal(got.length, n);
  assert.ok(bytesOf(got).equals(bytesOf(big)));
});
