import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { UserError } from '../../common/user-error.js';
import { tempDir } from '../../testing/test-helpers.js';
import { readLineBatches, type Line, type ReadLinesOptions } from './line-reader.js';

/** The lines one by one, as a consumer that stops early sees them. */
async function* readLines(path: string, opts?: ReadLinesOptions): AsyncGenerator<Line> {
  for await (const batch of readLineBatches(path, opts)) yield* batch;
}

/** All lines of a file. */
async function collect(path: string, opts?: ReadLinesOptions): Promise<Line[]> {
  const out: Line[] = [];
  for await (const line of readLines(path, opts)) out.push(line);
  return out;
}

/** Writes `content` to `name` in a fresh temp dir and returns its path. */
function write(t: { after: (fn: () => void) => void }, name: string, content: string | Uint8Array): string {
  const path = join(tempDir(t), name);
  writeFileSync(path, content);
  return path;
}

test('LF and CRLF endings, empty lines skipped, last line without newline, line numbers are physical', async (t) => {
  const path = write(t, 'a.txt', 'one\r\ntwo\n\n\r\nthree\r\n\nfour');
  assert.deepEqual(await collect(path), [
    { lineNo: 1, text: 'one' },
    { lineNo: 2, text: 'two' },
    { lineNo: 5, text: 'three' },
    { lineNo: 7, text: 'four' },
  ]);
});

test('an empty file and a file of only newlines yield nothing', async (t) => {
  assert.deepEqual(await collect(write(t, 'empty.txt', '')), []);
  assert.deepEqual(await collect(write(t, 'newlines.txt', '\n\r\n\n')), []);
});

test('multi-byte UTF-8 is decoded, also across read-chunk boundaries; a leading BOM is dropped', async (t) => {
  // 65535 ASCII bytes put the 3-byte '€' across the 64 KiB boundary of the file stream's chunks.
  const long = 'a'.repeat(65535) + '€ 日本 😀';
  const path = write(t, 'utf8.txt', `\uFEFFcafé\n${long}\nnaïve\n`);
  assert.deepEqual(await collect(path), [
    { lineNo: 1, text: 'café' },
    { lineNo: 2, text: long },
    { lineNo: 3, text: 'naïve' },
  ]);
});

test('invalid UTF-8 lines are reported with their line number, neighbours still read', async (t) => {
  const content = Buffer.concat([
    Buffer.from('good one\n'),
    Buffer.from([0x61, 0xff, 0xfe, 0x62, 0x0a]), // 0xff 0xfe never occur in UTF-8
    Buffer.from('good two\n'),
    Buffer.from([0xe2, 0x82, 0x0a]), // '€' cut after two of its three bytes
    Buffer.from([0xc0, 0xaf, 0x0d, 0x0a]), // overlong encoding of '/'
    Buffer.from('good three'),
  ]);
  assert.deepEqual(await collect(write(t, 'bad.txt', content)), [
    { lineNo: 1, text: 'good one' },
    { lineNo: 2, error: 'invalid_utf8' },
    { lineNo: 3, text: 'good two' },
    { lineNo: 4, error: 'invalid_utf8' },
    { lineNo: 5, error: 'invalid_utf8' },
    { lineNo: 6, text: 'good three' },
  ]);
});

test('a 3 MB line is reported once as line_too_long and the lines around it are read', async (t) => {
  const big = 'a'.repeat(3 * 1024 * 1024);
  const path = write(t, 'big.txt', `before\n${big}\r\nafter\n${big}`);
  assert.deepEqual(await collect(path), [
    { lineNo: 1, text: 'before' },
    { lineNo: 2, error: 'line_too_long' },
    { lineNo: 3, text: 'after' },
    { lineNo: 4, error: 'line_too_long' },
  ]);
});

test('maxLineBytes is exact and does not count the line ending', async (t) => {
  const path = write(t, 'limit.txt', 'abcd\nabcde\r\nabcdef\nabcde');
  assert.deepEqual(await collect(path, { maxLineBytes: 5 }), [
    { lineNo: 1, text: 'abcd' },
    { lineNo: 2, text: 'abcde' },
    { lineNo: 3, error: 'line_too_long' },
    { lineNo: 4, text: 'abcde' },
  ]);
  // The limit counts bytes, not characters: 'é' is two bytes.
  const accents = write(t, 'accents.txt', 'ééé\néé\n');
  assert.deepEqual(await collect(accents, { maxLineBytes: 5 }), [
    { lineNo: 1, error: 'line_too_long' },
    { lineNo: 2, text: 'éé' },
  ]);
  await assert.rejects(collect(path, { maxLineBytes: 0 }), RangeError);
});

test('gzip input is detected from its magic bytes, whatever the file name', async (t) => {
  const text = 'alpha\r\nbeta\n\ngamma';
  const expected = [
    { lineNo: 1, text: 'alpha' },
    { lineNo: 2, text: 'beta' },
    { lineNo: 4, text: 'gamma' },
  ];
  assert.deepEqual(await collect(write(t, 'log.txt', gzipSync(text))), expected);
  assert.deepEqual(await collect(write(t, 'log.gz', gzipSync(text))), expected);
  // A .gz name on a plain file is read as plain text.
  assert.deepEqual(await collect(write(t, 'plain.gz', text)), expected);
  // Concatenated gzip members (as `cat a.gz b.gz` makes) read as one stream.
  const twoMembers = Buffer.concat([gzipSync('alpha\r\nbeta\n\n'), gzipSync('gamma')]);
  assert.deepEqual(await collect(write(t, 'cat.gz', twoMembers)), expected);
});

test('a 3 MB line inside a gzip stream is dropped, not buffered, and invalid UTF-8 is caught after gunzip', async (t) => {
  const content = Buffer.concat([Buffer.from(`x\n${'a'.repeat(3 * 1024 * 1024)}\n`), Buffer.from([0xff, 0x0a]), Buffer.from('y\n')]);
  assert.deepEqual(await collect(write(t, 'big.gz', gzipSync(content))), [
    { lineNo: 1, text: 'x' },
    { lineNo: 2, error: 'line_too_long' },
    { lineNo: 3, error: 'invalid_utf8' },
    { lineNo: 4, text: 'y' },
  ]);
});

test('a corrupt or truncated gzip stream is a UserError naming the file', async (t) => {
  const corrupt = write(t, 'corrupt.gz', Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from('not really gzip at all')]));
  await assert.rejects(collect(corrupt), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.ok(err.message.startsWith(`${corrupt}: not a valid gzip stream (`), err.message);
    return true;
  });
  const full = gzipSync('line\n'.repeat(1000));
  const truncated = write(t, 'truncated.gz', full.subarray(0, full.length - 10));
  await assert.rejects(collect(truncated), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.ok(err.message.startsWith(`${truncated}: not a valid gzip stream (`), err.message);
    return true;
  });
});

test('a missing file or a directory is a UserError naming the path', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'nope.tsv');
  await assert.rejects(collect(missing), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.equal(err.message, `${missing}: cannot read file (no such file)`);
    return true;
  });
  const sub = join(dir, 'sub');
  mkdirSync(sub);
  await assert.rejects(collect(sub), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.equal(err.message, `${sub}: cannot read file (is a directory)`);
    return true;
  });
});

test('a consumer may stop early', async (t) => {
  const path = write(t, 'many.txt', 'line\n'.repeat(100_000));
  let n = 0;
  for await (const line of readLines(path)) {
    assert.deepEqual(line, { lineNo: n + 1, text: 'line' });
    if (++n === 3) break;
  }
  assert.equal(n, 3);
  // The same holds for a gzipped file, whose pipe must be torn down too.
  const gz = write(t, 'many.gz', gzipSync('line\n'.repeat(100_000)));
  for await (const line of readLines(gz)) {
    assert.deepEqual(line, { lineNo: 1, text: 'line' });
    break;
  }
});

test('chunk by chunk or line by line, the same lines: a reference split over random files', async (t) => {
  let seed = 3;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const pieces = [
    Buffer.from('abc\t1'),
    Buffer.from('\r'),
    Buffer.from('\n'),
    Buffer.from('\n\n'),
    Buffer.from('é€'),
    Buffer.from([0xff]),
    Buffer.alloc(300, 0x61),
  ];
  for (let file = 0; file < 6; file++) {
    const parts: Buffer[] = [];
    // Past several of the stream's 64 KiB chunks.
    while (parts.reduce((n, p) => n + p.length, 0) < 300_000) parts.push(pieces[next() % pieces.length]!);
    const bytes = Buffer.concat(parts);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const expected: Line[] = [];
    const raw = [];
    for (let at = 0, nl = bytes.indexOf(0x0a); ; nl = bytes.indexOf(0x0a, at)) {
      raw.push(bytes.subarray(at, nl === -1 ? bytes.length : nl));
      if (nl === -1) break;
      at = nl + 1;
    }
    raw.forEach((line, i) => {
      const body = line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
      if (body.length === 0) return;
      if (body.length > 200) return expected.push({ lineNo: i + 1, error: 'line_too_long' });
      try {
        expected.push({ lineNo: i + 1, text: decoder.decode(body) });
      } catch {
        expected.push({ lineNo: i + 1, error: 'invalid_utf8' });
      }
    });
    assert.deepEqual(await collect(write(t, `random-${file}.txt`, bytes), { maxLineBytes: 200 }), expected);
  }
});
