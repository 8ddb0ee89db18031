// The exactly-once audit of a commit trail: sound trails (across epochs, with a restart's rollback)
// pass; gaps, overlaps and lines that disagree with themselves are named.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { runCli } from '../testing/cli-harness.js';
import { tempDir } from '../testing/test-helpers.js';
import { ShardedExampleOrder } from '../worker/dataset/sharded-example-order.js';
import { auditCommits } from './commit-audit.js';

const N = 100;
const B = 8;

/** The commit line of `step` for `world` members, as the job log writes it. */
function line(step: number, world: number, cursorBefore: number, over: Partial<{ ranges: number[][]; cursor: number; epoch: number }> = {}): string {
  const ranges = over.ranges ?? Array.from({ length: world }, (_, r) => [cursorBefore + r * B, B]);
  const cursor = over.cursor ?? cursorBefore + world * B;
  return JSON.stringify({ step, generation: 1, world, epoch: over.epoch ?? Math.floor(cursor / N), epoch_size: N, cursor, ranges });
}

/** A sound trail of `steps` steps at `world` members from position 0. */
function trail(steps: number, world: number): string[] {
  return Array.from({ length: steps }, (_, i) => line(i + 1, world, i * world * B));
}

test('a sound trail across an epoch boundary is exactly once', () => {
  const r = auditCommits(trail(15, 2).join('\n'));
  assert.deepEqual(r.problems, []);
  assert.equal(r.steps, 15);
  assert.deepEqual(r.positions, [0, 240]);
  assert.deepEqual(r.complete_epochs, [0, 1]);
  assert.deepEqual(r.partial_epoch, { epoch: 2, trained: 40 });
});

test('a restart that commits steps again from its checkpoint: the later commits count', () => {
  // Steps 1–6, then a restart from the checkpoint of step 4 commits steps 5–8 again, one member fewer.
  const lines = [...trail(6, 2), line(5, 1, 64), line(6, 1, 72), line(7, 1, 80), line(8, 1, 88)];
  const r = auditCommits(lines.join('\n'));
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.rollbacks, [{ from: 6, to: 5 }]);
  assert.equal(r.steps, 8);
  assert.deepEqual(r.positions, [0, 96]);
});

test('gaps, overlaps, a cursor or an epoch that disagrees with the ranges, a missing step and a bad line are named', () => {
  const lines = [
    line(1, 2, 0),
    line(2, 2, 16, {
      ranges: [
        [16, 8],
        [40, 8],
      ],
      cursor: 48,
    }),
    line(3, 2, 48, {
      ranges: [
        [44, 8],
        [52, 8],
      ],
      cursor: 60,
    }),
    line(4, 1, 60, { cursor: 99 }),
    line(6, 1, 68, { epoch: 7 }),
    'not json',
  ];
  const r = auditCommits(lines.join('\n'));
  assert.deepEqual(r.problems, [
    'step 6 follows step 4: step 5 has no commit',
    'line 6: not a commit line',
    'step 2: positions [24, 40) were never trained',
    'step 3: positions [44, 48) were trained twice',
    'step 4: its cursor is 99, but its ranges end at 68',
    'step 6: epoch 7, but cursor 76 is in epoch 0',
  ]);
});

test('infobound audit: a real run is exactly once; a tampered trail fails with where', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 400, sites: 60, seed: 3 });
  const runDir = join(dir, 'run');
  const trained = await runCli(['train', '--data', data, '--steps', '12', '--batch', '16', '--bank-size', '64', '--run-dir', runDir]);
  assert.equal(trained.code, 0, trained.stderr);
  const ok = await runCli(['audit', runDir]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /: 12 committed steps over stream positions \[0, 192\)\n/);
  assert.match(ok.stdout, /exactly once: every position in the trail was trained once\n$/);
  const json = JSON.parse((await runCli(['audit', runDir, '--json'])).stdout) as { steps: number; problems: string[] };
  assert.deepEqual([json.steps, json.problems], [12, []]);

  const path = join(runDir, 'commits.jsonl');
  writeFileSync(path, [...trail(3, 1), line(4, 1, 16)].join('\n'));
  const bad = await runCli(['audit', runDir]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /NOT exactly once: 1 problem\n {2}step 4: positions \[16, 24\) were trained twice\n$/);
  assert.match(
    (await runCli(['audit', join(dir, 'nowhere')])).stderr,
    /^infobound: audit: .*nowhere\/commits\.jsonl: no such file \(is .* a run directory\?\)\n$/,
  );
});

test('shard ranges of a prepared dataset tile each complete epoch; a block read twice or a shard left out is named', () => {
  // 11 shards of uneven sizes: three blocks an epoch, the last one short.
  const order = new ShardedExampleOrder([9, 14, 3, 11, 8, 20, 5, 7, 12, 6, 4], 5, 4);
  const n = order.size;
  let cursor = 0;
  const lines: string[] = [];
  // Two epochs and a half, at 1, 2 and 3 members in turn: the order is the stream's, whatever the world.
  for (let step = 1; cursor + 12 <= 2.5 * n; step++) {
    const world = 1 + (step % 3);
    const batch = 12 / world;
    const ranges = Array.from({ length: world }, (_, r) => [cursor + r * batch, batch]);
    cursor += 12;
    const shard_ranges = ranges.map(([s, c]) => order.shardRanges(s!, c!));
    lines.push(JSON.stringify({ step, generation: 1, world, epoch: Math.floor(cursor / n), epoch_size: n, cursor, ranges, shard_ranges }));
  }
  const sound = auditCommits(lines.join('\n'));
  assert.deepEqual(sound.problems, []);
  assert.deepEqual(sound.complete_epochs, [0, 1]);
  assert.deepEqual(sound.shards, { epochs: 2, blocks: 6, shards: 22 });

  // The same block positions claimed by a second member of step 3.
  const forged = lines.map((l, i) => {
    if (i !== 2) return l;
    const v = JSON.parse(l) as { shard_ranges: unknown[][] };
    v.shard_ranges[0] = [...v.shard_ranges[0]!, ...(JSON.parse(lines[1]!) as { shard_ranges: unknown[][] }).shard_ranges[0]!];
    return JSON.stringify(v);
  });
  const twice = auditCommits(forged.join('\n'));
  assert.ok(
    twice.problems.some((p) => /step 3: member 0's shard ranges hold \d+ positions, its range \d+/.test(p)),
    twice.problems.join('\n'),
  );
  assert.ok(
    twice.problems.some((p) => /epoch 0: block of shards [\d,]+: positions \[\d+, \d+\) were read twice/.test(p)),
    twice.problems.join('\n'),
  );

  // A line whose shard ranges are not ranges is no commit line.
  const bad = auditCommits([lines[0]!.replace('"range":[', '"range":["x",')].join('\n'));
  assert.deepEqual(bad.problems, ['line 1: not a commit line']);
});
