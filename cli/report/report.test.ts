import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { tempDir } from '../../testing/test-helpers.js';

const run = promisify(execFile);
const BIN = new URL('../../../bin/infobound.js', import.meta.url).pathname;

async function cli(args: string[]): Promise<string> {
  const r = await run(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20 });
  return r.stdout;
}

/** The page as headless Chromium (Debian's package) leaves it after running its script. */
async function renderedDom(file: string): Promise<string> {
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--dump-dom', `file://${file}`];
  try {
    return (await run('chromium', args, { maxBuffer: 64 << 20, timeout: 60_000 })).stdout;
  } catch (err) {
    throw new Error(`chromium failed (apt-get install chromium): ${(err as Error).message}`);
  }
}

/** Checks that Chromium drew every plot of the report: an SVG with a path of several points each. */
async function assertPlotsDrawn(report: string, expected: number): Promise<void> {
  const html = readFileSync(report, 'utf8');
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=["']?https?:/i, 'self-contained: nothing fetched');
  assert.equal((html.match(/<figure class="plot"/g) ?? []).length, expected);
  assert.doesNotMatch(html, /<svg/, 'the plots are drawn by the page, not pre-rendered');
  const dom = await renderedDom(report);
  assert.match(dom, new RegExp(`data-plots-drawn="${expected}"`), 'every plot drawn');
  const figures = [...dom.matchAll(/<figure class="plot"[^>]*data-drawn="(\d+)"[^>]*>([\s\S]*?)<\/figure>/g)];
  assert.equal(figures.length, expected);
  for (const [, drawn, inner] of figures) {
    assert.ok(Number(drawn) >= 2, `a plot with ${drawn} points`);
    const paths = [...inner!.matchAll(/<path d="([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(
      paths.some((d) => (d.match(/L/g) ?? []).length >= 1),
      'a line with at least two points',
    );
  }
}

test('report of a training run, a temperature study and the MI benchmark: self-contained pages whose plots Chromium draws', { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1500, sites: 150, seed: 51 });

  const trainDir = join(dir, 'train');
  await cli(['train', '--data', data, '--steps', '40', '--batch', '64', '--bank-size', '512', '--run-dir', trainDir, '--json']);
  const trainReport = (await cli(['report', trainDir])).trim();
  assert.equal(trainReport, join(trainDir, 'report.html'));
  await assertPlotsDrawn(trainReport, 4);
  assert.match(readFileSync(trainReport, 'utf8'), /MI bounds vs ceiling vs true MI/);

  const studyDir = join(dir, 'study');
  const study = (await cli(['study-temperature', '--data', data, '--steps', '20', '--out', studyDir, '--json']))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { tau: number; learnable: boolean; infonce: number; temperature_cap: number; ceiling: number; true_mi: number });
  assert.deepEqual(
    study.map((r) => (r.learnable ? 'learnable' : r.tau)),
    [0.05, 0.1, 0.2, 0.5, 1, 'learnable'],
  );
  for (const r of study) {
    assert.ok(r.infonce <= r.temperature_cap + 1e-9 && r.temperature_cap <= r.ceiling + 1e-9, `τ ${r.tau}: bound ≤ cap ≤ log(K+1)`);
    assert.ok(r.true_mi > 0);
  }
  await assertPlotsDrawn((await cli(['report', studyDir])).trim(), 2);

  const benchDir = join(dir, 'bench');
  const levels = (await cli(['bench-mi', '--estimators', 'infonce,jsd', '--mi', '2,6', '--steps', '40', '--out', benchDir, '--json']))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    levels.map((l) => [l.estimator, l.true_mi]),
    [
      ['infonce', 2],
      ['infonce', 6],
      ['jsd', 2],
      ['jsd', 6],
    ],
  );
  for (const l of levels) for (const k of ['estimator', 'true_mi', 'mean', 'std']) assert.ok(k in l, k);
  // One staircase per estimator, and the means against the truth.
  await assertPlotsDrawn((await cli(['report', benchDir])).trim(), 3);
});

test('a directory with nothing to report, or an output path that cannot be made, is one clear line', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(
    cli(['report', dir]),
    (err: { stderr: string; code: number }) =>
      err.code === 1 && /^infobound: report: .* holds no run\.jsonl, temperature\.jsonl or bench-mi\.jsonl/.test(err.stderr),
  );
  await assert.rejects(cli(['report']), (err: { stderr: string }) => /expected one RUN_DIR, got 0/.test(err.stderr));
  // An output path under a file: one line for each command that writes one.
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  await assert.rejects(cli(['bench-mi', '--steps', '2', '--out', join(file, 'x')]), (err: { stderr: string }) =>
    /^infobound: --out .*a-file\/x: cannot create the directory: ENOTDIR\n$/.test(err.stderr),
  );
  await assert.rejects(cli(['study-temperature', '--out', join(file, 'x')]), (err: { stderr: string }) =>
    /^infobound: --out .*: cannot create the directory: ENOTDIR\n$/.test(err.stderr),
  );
});
