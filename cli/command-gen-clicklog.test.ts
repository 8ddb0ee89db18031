import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../common/user-error.js';
import { tempDir } from '../testing/test-helpers.js';
import { genClicklogCommand } from './command-gen-clicklog.js';

/** Runs the command in a child process, as the CLI would, and returns its stdout. */
function runCommand(args: string[]): string {
  const module = new URL('./command-gen-clicklog.js', import.meta.url).href;
  const script = `const { genClicklogCommand } = await import(${JSON.stringify(module)}); process.exitCode = await genClicklogCommand(process.argv.slice(1));`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('prints the metadata as exactly one JSON line and writes the files', (t) => {
  const out = join(tempDir(t), 'log.tsv.gz');
  const stdout = runCommand(['--out', out, '--queries', '300', '--sites', '40', '--seed', '5', '--intents', '4', '--clicks', '2500', '--noise', '0.2']);
  assert.ok(stdout.endsWith('\n'));
  assert.equal(stdout.split('\n').length, 2, 'one line');
  const meta = JSON.parse(stdout);
  assert.equal(meta.generator, 'infobound-synthetic-v1');
  assert.equal(meta.format, 'tsv');
  assert.equal(meta.compression, 'gzip');
  assert.deepEqual([meta.queries, meta.sites, meta.seed, meta.intents, meta.clicks, meta.noise], [300, 40, 5, 4, 2500, 0.2]);
  assert.ok(Number.isFinite(meta.true_mi) && meta.true_mi > 0);
  assert.ok(meta.oracle_recall_at_10 > 0 && meta.oracle_recall_at_10 <= 1);
  assert.ok(Number.isInteger(meta.rows) && meta.rows > 0 && meta.rows <= 2500);
  assert.ok(existsSync(out));
  assert.deepEqual(JSON.parse(readFileSync(`${out}.meta.json`, 'utf8')), meta);
});

test('--help prints usage and exits 0 without writing anything', (t) => {
  const out = join(tempDir(t), 'never.tsv');
  // execFileSync throws on a non-zero exit code.
  const stdout = runCommand(['--out', out, '--queries', '10', '--sites', '5', '--seed', '1', '--help']);
  assert.match(stdout, /^Usage: infobound gen-clicklog --out FILE --queries N --sites M --seed S/);
  assert.ok(!existsSync(out));
});

test('bad flags are one-line UserErrors', async (t) => {
  const out = join(tempDir(t), 'x.tsv');
  const base = ['--out', out, '--queries', '10', '--sites', '5', '--seed', '1'];
  const cases: [string[], RegExp][] = [
    [[...base, '--bogus', '1'], /Unknown option '--bogus'/],
    [[...base, 'extra'], /Unexpected argument 'extra'/],
    [['--out', out, '--queries', '10', '--sites', '5'], /--seed is required/],
    [['--queries', '10', '--sites', '5', '--seed', '1'], /--out is required/],
    [[...base.slice(0, -1), 'abc'], /--seed expects a number \(got "abc"\)/],
    [['--out', out, '--queries', '', '--sites', '5', '--seed', '1'], /--queries expects a number/],
    [[...base, '--noise', '1.5'], /noise must be in \[0, 1\)/],
    [[...base, '--intents', '7'], /intents \(7\) must not exceed sites/],
    [[...base, '--clicks', '2.5'], /clicks must be a positive integer/],
    [[...base, '--help=yes'], /does not take an argument/],
  ];
  for (const [args, pattern] of cases) {
    await assert.rejects(genClicklogCommand(args), (err: Error) => {
      assert.ok(err instanceof UserError, `${args.join(' ')}: ${err.stack}`);
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  }
  assert.ok(!existsSync(out));
});
