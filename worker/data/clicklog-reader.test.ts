import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { UserError } from '../../common/user-error.js';
import { tempDir } from '../../testing/test-helpers.js';
import { CLICKLOG_SKIP_REASONS, readClickLog, type ClickLog, type ReadClickLogOptions } from './clicklog-reader.js';

/** Writes `content` to `name` in a fresh temp dir and returns its path. */
function write(t: { after: (fn: () => void) => void }, name: string, content: string | Uint8Array): string {
  const path = join(tempDir(t), name);
  writeFileSync(path, content);
  return path;
}

/** Reads a click log, collecting its warnings. */
async function read(path: string, opts: ReadClickLogOptions = {}): Promise<{ log: ClickLog; warnings: string[] }> {
  const warnings: string[] = [];
  const log = await readClickLog(path, { warn: (m) => warnings.push(m), ...opts });
  return { log, warnings };
}

/** The reasons that occurred, with their counts. */
function nonzero(skipped: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(skipped).filter(([, n]) => n > 0));
}

/** Rows as [query, site, clicks] triples. */
function rows(log: ClickLog): [string, string, number][] {
  return Array.from(log.rowQuery, (q, i) => [log.queries[q]!, log.sites[log.rowSite[i]!]!, log.rowClicks[i]!]);
}

test('reads a TSV click log into distinct queries and sites with rows in file order', async (t) => {
  const path = write(t, 'clicks.tsv', 'shoes\tnike.com\t3\r\n\n  shoes \t adidas.com\t15\nbags\tnike.com\t2\nshoes\tnike.com\t1');
  const { log, warnings } = await read(path);
  assert.deepEqual(log.queries, ['shoes', 'bags']);
  assert.deepEqual(log.sites, ['nike.com', 'adidas.com']);
  assert.deepEqual(log.rowQuery, Int32Array.from([0, 0, 1, 0]));
  assert.deepEqual(log.rowSite, Int32Array.from([0, 1, 0, 0]));
  assert.deepEqual(log.rowClicks, Float64Array.from([3, 15, 2, 1]));
  assert.equal(log.lines, 4);
  assert.deepEqual(Object.keys(log.skipped), [...CLICKLOG_SKIP_REASONS]);
  assert.deepEqual(nonzero(log.skipped), {});
  assert.deepEqual(warnings, []);
});

test('every bad TSV line is skipped, counted and warned about with its line number; good lines around are kept', async (t) => {
  const lines = [
    'q1\ts1\t1', // 1 ok
    'q2\ts2', // 2 wrong_column_count
    'q3\ts3\t1\textra', // 3 wrong_column_count
    '   \ts4\t1', // 4 empty_field
    'q5\t\t1', // 5 empty_field
    'q6\ts6\tmany', // 6 non_numeric_clicks
    'q7\ts7\t', // 7 non_numeric_clicks
    'q8\ts8\t0x10', // 8 non_numeric_clicks (hex is not a decimal count)
    'q9\ts9\t-2', // 9 negative_clicks
    'q10\ts10\tInfinity', // 10 non_finite_clicks
    'q11\ts11\tNaN', // 11 non_finite_clicks
    'q12\ts12\t1e999', // 12 non_finite_clicks
    'q13\ts13\t-inf', // 13 non_finite_clicks
    'q14\ts14\t0', // 14 zero_clicks
    'q15\ts15\t-0.0', // 15 zero_clicks
    'q16\ts16\t 2.5e1 ', // 16 ok
  ];
  const path = write(t, 'bad.tsv', lines.join('\n') + '\n');
  const { log, warnings } = await read(path);
  assert.deepEqual(rows(log), [
    ['q1', 's1', 1],
    ['q16', 's16', 25],
  ]);
  assert.equal(log.lines, 16);
  assert.deepEqual(nonzero(log.skipped), {
    wrong_column_count: 2,
    empty_field: 2,
    non_numeric_clicks: 3,
    negative_clicks: 1,
    non_finite_clicks: 4,
    zero_clicks: 2,
  });
  const reasons = [
    'wrong_column_count',
    'wrong_column_count',
    'empty_field',
    'empty_field',
    'non_numeric_clicks',
    'non_numeric_clicks',
    'non_numeric_clicks',
    'negative_clicks',
    'non_finite_clicks',
    'non_finite_clicks',
    'non_finite_clicks',
    'non_finite_clicks',
    'zero_clicks',
    'zero_clicks',
  ];
  assert.deepEqual(
    warnings,
    reasons.map((r, i) => `infobound: ${path}:${i + 2}: skipped (${r})`),
  );
});

test('invalid UTF-8 and a 3 MB line are skipped with their line numbers', async (t) => {
  const content = Buffer.concat([
    Buffer.from('a\tx.com\t1\n'),
    Buffer.from([0x71, 0xff, 0xfe, 0x09, 0x73, 0x09, 0x31, 0x0a]), // q\xff\xfe<TAB>s<TAB>1
    Buffer.from(`${'a'.repeat(3 * 1024 * 1024)}\tbig.com\t1\n`),
    Buffer.from('\nb\ty.com\t2\n'),
  ]);
  const path = write(t, 'mixed.tsv', content);
  const { log, warnings } = await read(path);
  assert.deepEqual(rows(log), [
    ['a', 'x.com', 1],
    ['b', 'y.com', 2],
  ]);
  assert.equal(log.lines, 4);
  assert.deepEqual(nonzero(log.skipped), { invalid_utf8: 1, line_too_long: 1 });
  assert.deepEqual(warnings, [`infobound: ${path}:2: skipped (invalid_utf8)`, `infobound: ${path}:3: skipped (line_too_long)`]);
  // maxLineBytes is passed through to the line reader: the 9-byte rows are too long for 8.
  assert.equal(rows((await read(path, { maxLineBytes: 9 })).log).length, 2);
  await assert.rejects(read(path, { maxLineBytes: 8 }), {
    name: 'UserError',
    message: `${path}: no valid click-log line (4 lines read; skipped: invalid_utf8=1, line_too_long=3)`,
  });
});

test('reads JSON lines (auto-detected) and skips bad ones with the right reason', async (t) => {
  const lines = [
    '{"query": "red shoes", "site": "nike.com", "clicks": 3}', // 1 ok
    '{"query": "red shoes", "site": "nike.com", "clicks": 3', // 2 invalid_json: unparsable
    '["red shoes", "nike.com", 3]', // 3 invalid_json: not an object
    'null', // 4 invalid_json
    '{"query": "red shoes", "clicks": 3}', // 5 invalid_json: no site
    '{"query": 7, "site": "nike.com", "clicks": 3}', // 6 invalid_json: query not a string
    '{"query": "red shoes", "site": "nike.com"}', // 7 invalid_json: no clicks
    '{"query": " ", "site": "nike.com", "clicks": 3}', // 8 empty_field
    '{"query": "a", "site": "b", "clicks": "many"}', // 9 non_numeric_clicks
    '{"query": "a", "site": "b", "clicks": true}', // 10 non_numeric_clicks
    '{"query": "a", "site": "b", "clicks": -1}', // 11 negative_clicks
    '{"query": "a", "site": "b", "clicks": 1e999}', // 12 non_finite_clicks
    '{"query": "a", "site": "b", "clicks": "NaN"}', // 13 non_finite_clicks
    '{"query": "a", "site": "b", "clicks": 0}', // 14 zero_clicks
    'q\ts\t1', // 15 invalid_json: the file is jsonl
    '{"site": " adidas.com ", "query": "blue\\tshoes", "clicks": "2", "extra": [1]}', // 16 ok
  ];
  const path = write(t, 'clicks.jsonl', lines.join('\r\n'));
  const { log, warnings } = await read(path);
  assert.deepEqual(rows(log), [
    ['red shoes', 'nike.com', 3],
    ['blue\tshoes', 'adidas.com', 2],
  ]);
  assert.equal(log.lines, 16);
  assert.deepEqual(nonzero(log.skipped), {
    invalid_json: 7,
    empty_field: 1,
    non_numeric_clicks: 2,
    negative_clicks: 1,
    non_finite_clicks: 2,
    zero_clicks: 1,
  });
  const lineNos = warnings.map((w) => Number(/:(\d+): skipped/.exec(w)![1]));
  assert.deepEqual(lineNos, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  assert.equal(warnings[0], `infobound: ${path}:2: skipped (invalid_json)`);
  assert.equal(warnings[13], `infobound: ${path}:15: skipped (invalid_json)`);
});

test('auto detection looks at the first non-empty line; an explicit format overrides it', async (t) => {
  const jsonl = write(t, 'log.txt', '\n\n  {"query": "q", "site": "s", "clicks": 1}\n');
  assert.deepEqual(rows((await read(jsonl)).log), [['q', 's', 1]]);
  // Read as TSV the same file has no valid line.
  await assert.rejects(read(jsonl, { format: 'tsv' }), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.equal(err.message, `${jsonl}: no valid click-log line (1 lines read; skipped: wrong_column_count=1)`);
    return true;
  });
  const tsv = write(t, 'log.jsonl', 'q\ts\t1\n');
  assert.deepEqual(rows((await read(tsv)).log), [['q', 's', 1]]);
  await assert.rejects(read(tsv, { format: 'jsonl' }), /no valid click-log line \(1 lines read; skipped: invalid_json=1\)/);
  await assert.rejects(read(tsv, { format: 'csv' as 'tsv' }), /format must be one of auto, tsv, jsonl, got "csv"/);
});

test('reads a gzipped click log', async (t) => {
  const path = write(t, 'clicks.tsv.gz', gzipSync('q1\ts1\t1\nq2\ts2\tx\nq2\ts1\t4\n'));
  const { log, warnings } = await read(path);
  assert.deepEqual(rows(log), [
    ['q1', 's1', 1],
    ['q2', 's1', 4],
  ]);
  assert.deepEqual(warnings, [`infobound: ${path}:2: skipped (non_numeric_clicks)`]);
});

test('after maxWarnings warnings one notice is given, then lines are only counted, then a summary', async (t) => {
  const lines = ['ok\ts\t1', ...Array.from({ length: 5 }, (_, i) => `bad${i}\ts\t0`), 'broken', 'ok2\ts\t2'];
  const path = write(t, 'many.tsv', lines.join('\n'));
  const { log, warnings } = await read(path, { maxWarnings: 2 });
  assert.deepEqual(nonzero(log.skipped), { zero_clicks: 5, wrong_column_count: 1 });
  assert.deepEqual(warnings, [
    `infobound: ${path}:2: skipped (zero_clicks)`,
    `infobound: ${path}:3: skipped (zero_clicks)`,
    `infobound: ${path}: further skipped lines not shown`,
    `infobound: ${path}: skipped 6 of 8 lines (wrong_column_count=1, zero_clicks=5)`,
  ]);
  // Exactly maxWarnings skipped lines: all shown, no notice, no summary.
  const exact = await read(path, { maxWarnings: 6 });
  assert.equal(exact.warnings.length, 6);
  assert.equal(exact.warnings[5], `infobound: ${path}:7: skipped (wrong_column_count)`);
});

test('by default warnings go to stderr and stop after 20', async (t) => {
  const path = write(t, 'noisy.tsv', ['q\ts\t1', ...Array.from({ length: 30 }, () => 'bad')].join('\n'));
  const written: string[] = [];
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write;
  try {
    await readClickLog(path);
  } finally {
    process.stderr.write = original;
  }
  assert.equal(written.length, 22);
  assert.equal(written[0], `infobound: ${path}:2: skipped (wrong_column_count)\n`);
  assert.equal(written[19], `infobound: ${path}:21: skipped (wrong_column_count)\n`);
  assert.equal(written[20], `infobound: ${path}: further skipped lines not shown\n`);
  assert.equal(written[21], `infobound: ${path}: skipped 30 of 31 lines (wrong_column_count=30)\n`);
});

test('a file without a valid line is a UserError with the counts', async (t) => {
  const path = write(t, 'bad.tsv', 'a\tb\t0\nc\td\n\ne\tf\t-1\ng\th\tzero\n');
  await assert.rejects(read(path), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.equal(
      err.message,
      `${path}: no valid click-log line (4 lines read; skipped: wrong_column_count=1, non_numeric_clicks=1, negative_clicks=1, zero_clicks=1)`,
    );
    return true;
  });
  const empty = write(t, 'empty.tsv', '\n\n');
  await assert.rejects(read(empty), { name: 'UserError', message: `${empty}: no valid click-log line (0 lines read)` });
  const missing = join(tempDir(t), 'missing.tsv');
  await assert.rejects(read(missing), { name: 'UserError', message: `${missing}: cannot read file (no such file)` });
});

// Its speed belongs in a benchmark (loadtest/), not in an assertion: these machines are shared and noisy.
test('reads a 300k-line click log whole', async (t) => {
  const n = 300_000;
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(`query number ${i % 50_000}\tsite${i % 7_000}.example.com\t${1 + (i % 5)}`);
  const path = write(t, 'big.tsv', parts.join('\n') + '\n');
  const { log } = await read(path);
  assert.equal(log.rowQuery.length, n);
  assert.equal(log.queries.length, 50_000);
  assert.equal(log.sites.length, 7_000);
  assert.equal(log.queries[log.rowQuery[123_457]!], 'query number 23457');
  assert.equal(log.rowClicks[123_457], 3);
});

test('clicks are whole counts, capped before they can size anything; NUL and lone surrogates are not text', async (t) => {
  const lines = [
    'q1\ts1\t2.5', // 1 fractional_clicks: a click is one example, half of one has no meaning
    'q2\ts2\t1e12', // 2 capped to maxClicks
    'q3\x00\ts3\t1', // 3 invalid_text
    '{"query": "q4\\ud800", "site": "s4", "clicks": 1}', // 4 invalid_text (a JSON escape of a lone surrogate)
    'q5\ts5\t3', // 5 ok
  ];
  const tsv = write(t, 'odd.tsv', [lines[0], lines[1], lines[2], lines[4]].join('\n'));
  const { log, warnings } = await read(tsv, { maxClicks: 1000 });
  assert.deepEqual(rows(log), [
    ['q2', 's2', 1000],
    ['q5', 's5', 3],
  ]);
  assert.equal(log.capped, 1);
  assert.deepEqual(nonzero(log.skipped), { fractional_clicks: 1, invalid_text: 1 });
  assert.match(warnings.at(-1)!, /1 rows had more than 1000 clicks and were capped to it \(clicklog\.max_clicks\)$/);
  const jsonl = write(t, 'odd.jsonl', [lines[3], '{"query": "ok", "site": "s", "clicks": 1}'].join('\n'));
  assert.deepEqual(nonzero((await read(jsonl)).log.skipped), { invalid_text: 1 });
});

test('a FIFO or a device is refused at once with one line, never waited on or read forever', async (t) => {
  const fifo = join(tempDir(t), 'pipe');
  execFileSync('mkfifo', [fifo]);
  for (const path of [fifo, '/dev/zero']) {
    await assert.rejects(
      read(path),
      (err: Error) => err instanceof UserError && err.message === `${path}: not a regular file (a FIFO, device or socket is not read as data)`,
    );
  }
});
