import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { UserError } from '../../common/user-error.js';
import { tempDir } from '../../testing/test-helpers.js';
import { readClickLog } from '../data/clicklog-reader.js';
import { isHeldOutQuery } from '../data/holdout-split.js';
import { textFeatureHashes } from '../text/text-features.js';
import { MANIFEST_FILE } from './dataset-manifest.js';
import { expandInputs, prepareDataset, type PrepareOptions } from './prepare-dataset.js';
import { PreparedDataset } from './prepared-dataset.js';

const OPTIONS: PrepareOptions = { read: { warn: () => {}, maxClicks: 1000 }, holdout: 0.1, shardBytes: 64 * 1024 };

test('prepare: the rows of a click log, featurised and split as training splits them, across shards cut at the size asked', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(log, { queries: 3000, sites: 300, seed: 5 });
  const out = join(dir, 'ds');
  const { manifest, alreadyPrepared } = await prepareDataset([log], out, OPTIONS);
  assert.equal(alreadyPrepared, false);
  assert.ok(manifest.shards.length >= 3, `${manifest.shards.length} shards of 64 KiB`);
  assert.ok(manifest.shards.every((s) => s.bytes <= 64 * 1024 + 1024));
  assert.ok(manifest.true_mi !== null && manifest.true_mi > 0, "the generator's true MI comes along");

  // The same rows as the in-memory reader, in file order, each on the side of the split training puts it.
  const whole = await readClickLog(log, OPTIONS.read);
  const expected = Array.from(whole.rowQuery, (q, r) => ({ query: whole.queries[q]!, site: whole.sites[whole.rowSite[r]!]!, clicks: whole.rowClicks[r]! }));
  const train = expected.filter((r) => !isHeldOutQuery(r.query, 0.1));
  const held = expected.filter((r) => isHeldOutQuery(r.query, 0.1));
  assert.deepEqual(manifest.rows, { train: train.length, held_out: held.length });
  assert.equal(
    manifest.examples,
    train.reduce((n, r) => n + r.clicks, 0),
  );
  assert.equal(manifest.lines, whole.lines);

  const ds = await PreparedDataset.open(out, 2);
  const names = await ds.siteNames();
  const rows: { site: string; clicks: number; features: number[] }[] = [];
  for (let i = 0; i < manifest.shards.length; i++) {
    const s = await ds.trainShard(i);
    for (let r = 0; r < s.site.length; r++) {
      rows.push({
        site: names[s.site[r]!]!,
        clicks: s.clicks[r]!,
        features: Array.from(s.featureHashes.subarray(s.featureOffsets[r]!, s.featureOffsets[r + 1]!)),
      });
    }
  }
  assert.deepEqual(
    rows,
    train.map((r) => ({ site: r.site, clicks: r.clicks, features: textFeatureHashes(r.query) })),
  );
  // Each site's training clicks (the logQ frequencies) and its name's features, as training makes them.
  const clicksOf = new Map<string, number>();
  for (const r of train) clicksOf.set(r.site, (clicksOf.get(r.site) ?? 0) + r.clicks);
  const { clicks, featureOffsets, featureHashes } = ds.sites;
  assert.deepEqual(
    names.map((s, i) => [s, clicks[i], Array.from(featureHashes.subarray(featureOffsets[i]!, featureOffsets[i + 1]!))]),
    names.map((s) => [s, clicksOf.get(s) ?? 0, textFeatureHashes(s)]),
  );
  let heldRows = 0;
  for (let i = 0; i < manifest.held_out.length; i++) heldRows += (await ds.heldOutShard(i)).site.length;
  assert.equal(heldRows, held.length);
});

test('prepare is idempotent and never leaves a dataset that looks complete: leftovers cleared, failures leave nothing', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'clicks.tsv');
  writeFileSync(log, 'red shoes\tnike.com\t3\nblue bag\tbags.com\t2\n');
  const out = join(dir, 'ds');
  // An interrupted prepare's work directory, left behind (its process is gone), and another host's.
  const dead = `${out}.partial-${hostname()}-${2 ** 22 + 1}-0a1b2c3d`;
  mkdirSync(dead);
  writeFileSync(join(dead, 'train-00000.ibshard'), 'half');
  mkdirSync(`${out}.partial-elsewhere-1`);
  const first = await prepareDataset([log], out, { ...OPTIONS, holdout: 0 });
  assert.deepEqual(readdirSync(dir).sort(), ['clicks.tsv', 'ds', 'ds.partial-elsewhere-1']);
  rmSync(`${out}.partial-elsewhere-1`, { recursive: true });
  const again = await prepareDataset([log], out, { ...OPTIONS, holdout: 0 });
  assert.equal(again.alreadyPrepared, true);
  assert.deepEqual(again.manifest, first.manifest);
  await assert.rejects(
    prepareDataset([log], out, { ...OPTIONS, holdout: 0.5 }),
    (err: Error) => err instanceof UserError && /already holds a dataset of other inputs or settings/.test(err.message),
  );
  // A failure half-way (the second input has no valid line) leaves no dataset and no work directory.
  const bad = join(dir, 'bad.tsv');
  writeFileSync(bad, 'no tabs here\n');
  const out2 = join(dir, 'ds2');
  await assert.rejects(prepareDataset([log, bad], out2, OPTIONS), /bad\.tsv: no valid click-log line/);
  assert.deepEqual(readdirSync(dir).sort(), ['bad.tsv', 'clicks.tsv', 'ds']);
  // Two preparers of the same inputs at once (workers sharing a run directory): one dataset, both succeed.
  const shared = join(dir, 'shared');
  const both = await Promise.all([prepareDataset([log], shared, OPTIONS), prepareDataset([log], shared, OPTIONS)]);
  assert.deepEqual(both[0].manifest, both[1].manifest);
  assert.deepEqual(readdirSync(dir).sort(), ['bad.tsv', 'clicks.tsv', 'ds', 'shared']);
  rmSync(shared, { recursive: true });
  // Everything held out: nothing to train on.
  await assert.rejects(prepareDataset([log], join(dir, 'ds3'), { ...OPTIONS, holdout: 1 }), /no training clicks left/);
  assert.equal(existsSync(join(dir, 'ds3')), false);
});

test('a missing or altered shard, an altered vocabulary and another featuriser are one line each, naming the file', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(log, { queries: 500, sites: 50, seed: 6 });
  const fresh = async (name: string) => {
    const out = join(dir, name);
    await prepareDataset([log], out, OPTIONS);
    return out;
  };
  const altered = await fresh('altered');
  const shard = join(altered, 'train-00000.ibshard');
  const bytes = readFileSync(shard);
  bytes[bytes.length - 1]! ^= 1;
  writeFileSync(shard, bytes);
  const ds = await PreparedDataset.open(altered);
  await assert.rejects(
    ds.trainShard(0),
    (err: Error) =>
      err instanceof UserError && err.message === `dataset shard ${shard}: corrupt (its SHA-256 is not the manifest's): prepare the dataset again`,
  );

  const missing = await fresh('missing');
  rmSync(join(missing, 'train-00000.ibshard'));
  await assert.rejects((await PreparedDataset.open(missing)).trainShard(0), /dataset shard .*train-00000\.ibshard: cannot read \(ENOENT\)/);

  const sites = await fresh('sites');
  writeFileSync(join(sites, 'sites.tsv'), 'x\t1\n');
  await assert.rejects((await PreparedDataset.open(sites)).siteNames(), /sites\.tsv: corrupt/);
  writeFileSync(join(sites, 'sites.ibsites'), 'IBSITES1');
  await assert.rejects(PreparedDataset.open(sites), /dataset site features .*sites\.ibsites: corrupt/);

  const older = await fresh('older');
  const v1 = JSON.parse(readFileSync(join(older, MANIFEST_FILE), 'utf8'));
  v1.format = 'infobound-clicklog-dataset-v1';
  writeFileSync(join(older, MANIFEST_FILE), JSON.stringify(v1));
  await assert.rejects(
    PreparedDataset.open(older),
    /of format infobound-clicklog-dataset-v1, and this trainer reads infobound-clicklog-dataset-v\d+: prepare it again/,
  );

  const other = await fresh('other');
  const m = JSON.parse(readFileSync(join(other, MANIFEST_FILE), 'utf8'));
  m.featurizer.trigram_salt = 7;
  writeFileSync(join(other, MANIFEST_FILE), JSON.stringify(m));
  await assert.rejects(PreparedDataset.open(other), /prepared with another featuriser \(trigram_salt 7, this trainer's is \d+\): prepare it again/);
  await assert.rejects(PreparedDataset.open(dir), /no manifest: not a prepared dataset/);
});

test('inputs: files, a directory of logs (sidecars and hidden files left out), and name patterns', async (t) => {
  const dir = tempDir(t);
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  for (const f of ['day-2.tsv', 'day-1.tsv', 'day-1.tsv.meta.json', '.hidden', 'other.jsonl']) writeFileSync(join(logs, f), 'q\ts\t1\n');
  assert.deepEqual(
    await expandInputs([logs]),
    ['day-1.tsv', 'day-2.tsv', 'other.jsonl'].map((f) => join(logs, f)),
  );
  assert.deepEqual(
    await expandInputs([join(logs, 'day-*.tsv')]),
    ['day-1.tsv', 'day-2.tsv'].map((f) => join(logs, f)),
  );
  await assert.rejects(expandInputs([join(logs, 'week-*.tsv')]), /matches no file/);
  await assert.rejects(expandInputs([join(dir, 'nope.tsv')]), /nope\.tsv: no such file or directory/);
  const { manifest } = await prepareDataset([logs], join(dir, 'ds'), { ...OPTIONS, holdout: 0 });
  assert.equal(manifest.sources.length, 3);
  assert.equal(manifest.rows.train, 3);
});
