import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { UserError } from '../../common/user-error.js';
import { tempDir } from '../../testing/test-helpers.js';
import { readInputChunks } from './input-stream.js';

/** All bytes of a file as read through readInputChunks. */
async function readAll(path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readInputChunks(path)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** n pseudo-random bytes from a fixed LCG, so that they are not trivially compressible. */
function noise(n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

test('plain files are returned byte for byte, gzipped ones decompressed', async (t) => {
  const dir = tempDir(t);
  const data = noise(1 << 20);
  writeFileSync(join(dir, 'plain.bin'), data);
  writeFileSync(join(dir, 'packed.bin'), gzipSync(data));
  assert.ok((await readAll(join(dir, 'plain.bin'))).equals(data));
  assert.ok((await readAll(join(dir, 'packed.bin'))).equals(data));
});

test('short files: empty, one byte, and a lone 0x1f are plain', async (t) => {
  const dir = tempDir(t);
  for (const bytes of [[], [0x1f], [0x1f, 0x8c], [0x8b, 0x1f]]) {
    const path = join(dir, `f${bytes.length}-${bytes.join('-')}`);
    writeFileSync(path, Buffer.from(bytes));
    assert.deepEqual([...(await readAll(path))], bytes);
  }
});

test('the gzip magic alone is a truncated gzip stream', async (t) => {
  const path = join(tempDir(t), 'magic-only');
  writeFileSync(path, Buffer.from([0x1f, 0x8b]));
  await assert.rejects(readAll(path), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.match(err.message, /: not a valid gzip stream \(unexpected end of file\)$/);
    assert.ok(err.message.startsWith(`${path}: `));
    return true;
  });
});
