import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { assertOneLineError, runCli } from '../testing/cli-harness.js';
import { tempDir } from '../testing/test-helpers.js';
import { progressLine } from './command-prepare.js';

test('infobound prepare: a dataset, kept when asked again; usage mistakes and unreadable inputs are one line each', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'clicks.tsv');
  writeFileSync(log, 'red shoes\tnike.com\t3\nblue bag\tbags.com\t2\nred shoes\tadidas.com\t1.5\n');
  const out = join(dir, 'ds');
  const first = await runCli(['prepare', log, '--out', out, '--json']);
  assert.equal(first.code, 0, first.stderr);
  const summary = JSON.parse(first.stdout) as { already_prepared: boolean; rows: { train: number; held_out: number }; skipped: Record<string, number> };
  assert.equal(summary.already_prepared, false);
  assert.equal(summary.rows.train + summary.rows.held_out, 2);
  assert.deepEqual(summary.skipped, { fractional_clicks: 1 });
  const again = await runCli(['prepare', log, '--out', out]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /already holds this preparation of these inputs: kept/);

  assertOneLineError(await runCli(['prepare', '--out', out]), /^infobound: prepare: no INPUT/);
  assertOneLineError(await runCli(['prepare', log]), /^infobound: prepare: --out DIR is required/);
  assertOneLineError(await runCli(['prepare', '/dev/zero', '--out', join(dir, 'z')]), /^infobound: \/dev\/zero: not a regular file/);
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  assertOneLineError(await runCli(['prepare', fifo, '--out', join(dir, 'f')]), /not a regular file/);
  assertOneLineError(await runCli(['prepare', log, '--out', log]), /exists and is not a dataset/);
});

test('the progress line: rows, bytes of the total, rate and time left', () => {
  assert.equal(
    progressLine({ rows: 2_500_000, bytes: 50e6, totalBytes: 150e6, seconds: 5 }),
    'prepare: 2.50 M rows, 50.0 of 150.0 MB, 0.50 M rows/s, eta 0:00:10',
  );
  assert.match(progressLine({ rows: 0, bytes: 0, totalBytes: 0, seconds: 0 }), /0\.00 M rows\/s, eta 0:00:00$/);
});
