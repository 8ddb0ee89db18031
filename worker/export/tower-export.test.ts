// `infobound export`: a trained click-log checkpoint becomes ONNX towers that a fresh ONNX Runtime
// session runs on the featuriser's ids to the trainer's own embeddings, with the site embeddings and
// the featuriser's spec beside them; bad requests are one line and leave nothing behind.
import { selectRows } from '../text/text-features.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import * as ort from 'onnxruntime-node';
import { readCheckpoint } from '../../common/checkpoint-file.js';
import { loadConfig } from '../../common/config/mod.js';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { assertOneLineError, runCli } from '../../testing/cli-harness.js';
import { checkOnnxModel } from '../../testing/onnx-checker.js';
import { expectArraysClose, tempDir, useTestBackend } from '../../testing/test-helpers.js';
import { featurizeAll } from '../text/text-features.js';
import { ClickLogTask } from '../train/clicklog-task.js';
import { restoreModelState } from '../train/training-state-file.js';
import { EXPORT_FILES } from './tower-export.js';

const BUCKETS = 1 << 12;

/** Runs a tower file in a fresh session on the featurised texts (and, for a site tower with IDs, their rows). */
async function runTower(file: string, texts: readonly string[], items?: readonly number[]): Promise<{ embedding: Float32Array; dims: readonly number[] }> {
  const rows = featurizeAll(texts, BUCKETS);
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({
      ...(items === undefined
        ? {}
        : {
            items: new ort.Tensor(
              'int64',
              BigInt64Array.from(items, (x) => BigInt(x)),
              [items.length],
            ),
          }),
      ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(rows.ids, (x) => BigInt(x)),
        [rows.ids.length],
      ),
      offsets: new ort.Tensor(
        'int64',
        BigInt64Array.from(rows.offsets, (x) => BigInt(x)),
        [rows.offsets.length],
      ),
    });
    return { embedding: out.embedding!.data as Float32Array, dims: out.embedding!.dims };
  } finally {
    await session.release();
  }
}

test('export: the towers reproduce the trainer’s query and site embeddings in a fresh ONNX Runtime session; bad requests are one line', async (t) => {
  await useTestBackend();
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1500, sites: 150, seed: 8 });
  const configFile = join(dir, 'small.yaml');
  writeFileSync(configFile, `clicklog:\n  hash_buckets: ${BUCKETS}\n  embedding_dim: 16\n  hidden_dim: 24\n  output_dim: 8\n`);
  const runDir = join(dir, 'run');
  const trained = await runCli(['train', '--config', configFile, '--data', data, '--steps', '8', '--batch', '32', '--bank-size', '128', '--run-dir', runDir]);
  assert.equal(trained.code, 0, trained.stderr);
  const checkpoint = join(runDir, 'checkpoint.ibck');
  const out = join(dir, 'export');
  const exported = await runCli(['export', checkpoint, '--out', out]);
  assert.equal(exported.code, 0, exported.stderr);
  assert.deepEqual(readdirSync(out).sort(), Object.values(EXPORT_FILES).sort());
  // Plain ONNX that the reference checker accepts, symbolic sizes and all.
  for (const tower of [EXPORT_FILES.queryTower, EXPORT_FILES.siteTower]) checkOnnxModel(join(out, tower));

  // The trainer's own embeddings, from the same checkpoint.
  // Read from the raw log (the run trained on its prepared copy): the same sites, ids and features.
  const config = { ...loadConfig(join(runDir, 'config.json')), data };
  const task = await ClickLogTask.load(config);
  const ck = await readCheckpoint(checkpoint);
  restoreModelState(ck, 'checkpoint', task);
  const step = (ck.meta as { step: number }).step;
  assert.equal(step, 8);
  const { queries, sites } = task.data.log;
  const queryIds = Int32Array.from({ length: 40 }, (_, i) => (i * 37) % queries.length);
  const expectedQ = await task.model.embedQueries(selectRows(task.data.queryFeatures, queryIds));
  const q = await runTower(
    join(out, EXPORT_FILES.queryTower),
    Array.from(queryIds, (i) => queries[i]!),
  );
  assert.deepEqual(q.dims, [queryIds.length, 8]);
  expectArraysClose(q.embedding, expectedQ, { atol: 2e-6, rtol: 1e-4 });

  const allSites = Int32Array.from(sites, (_, i) => i);
  const expectedS = await task.model.embedSites(allSites, step);
  // The site tower takes each site's row of sites.jsonl beside its text (site ID embeddings, the default).
  const s = await runTower(join(out, EXPORT_FILES.siteTower), sites, Array.from(allSites));
  expectArraysClose(s.embedding, expectedS, { atol: 2e-6, rtol: 1e-4 });
  // The first site's text as a site the export never saw (−1): a unit embedding, its text alone.
  const unknown = await runTower(join(out, EXPORT_FILES.siteTower), [sites[0]!], [-1]);
  assert.ok(Math.abs(Math.hypot(...unknown.embedding) - 1) < 1e-5);
  assert.ok(
    unknown.embedding.some((x, k) => Math.abs(x - expectedS[k]!) > 1e-4),
    'without its ID row the site embeds differently',
  );
  // The site embeddings file holds the trainer's embeddings, in the order of sites.jsonl.
  const file = readFileSync(join(out, EXPORT_FILES.siteEmbeddings));
  assert.deepEqual(new Float32Array(file.buffer, file.byteOffset, file.byteLength / 4), expectedS);
  const names = readFileSync(join(out, EXPORT_FILES.sites), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { row: number; site: string });
  assert.deepEqual(
    names.map((n) => n.site),
    sites,
  );
  assert.deepEqual(
    names.map((n) => n.row),
    Array.from(allSites),
  );
  const manifest = JSON.parse(readFileSync(join(out, EXPORT_FILES.manifest), 'utf8'));
  assert.deepEqual(manifest.sites.shape, [sites.length, 8]);
  assert.deepEqual(manifest.towers.site_inputs, ['ids', 'offsets', 'items']);
  assert.equal(JSON.parse(readFileSync(join(out, EXPORT_FILES.featurizer), 'utf8')).buckets, BUCKETS);

  // An item without features pools to zeros, as the trainer's pooling does: still a unit embedding.
  const empty = await runTower(join(out, EXPORT_FILES.queryTower), ['', queries[0]!]);
  const norm = Math.hypot(...empty.embedding.subarray(0, 8));
  assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
  expectArraysClose(empty.embedding.subarray(8), expectedQ.subarray(0, 8), { atol: 2e-6, rtol: 1e-4 });

  // Bad requests: one line each, and nothing written.
  assertOneLineError(await runCli(['export', checkpoint, '--out', out]), /^infobound: export: .*export is not empty; name a new or empty directory$/);
  const notOurs = join(dir, 'not-a-checkpoint.ibck');
  writeFileSync(notOurs, 'hello');
  assertOneLineError(await runCli(['export', notOurs, '--out', join(dir, 'e2'), '--config', join(runDir, 'config.json')]), /not an Infobound checkpoint/);
  assertOneLineError(
    await runCli(['export', join(dir, 'missing.ibck'), '--out', join(dir, 'e3')]),
    /^infobound: export: no config\.json beside .*; pass --config FILE/,
  );
  assertOneLineError(await runCli(['export', checkpoint]), /^infobound: export: --out DIR is required$/);
  assert.ok(!existsSync(join(dir, 'e2')) && !existsSync(join(dir, 'e3')));
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes('partial')),
    [],
  );
});

test("export with clicklog.site_ids off: the site tower takes the text alone and reproduces the trainer's site embeddings", async (t) => {
  await useTestBackend();
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1500, sites: 150, seed: 9 });
  const configFile = join(dir, 'text-only.yaml');
  writeFileSync(configFile, `clicklog:\n  site_ids: false\n  hash_buckets: ${BUCKETS}\n  embedding_dim: 16\n  hidden_dim: 24\n  output_dim: 8\n`);
  const runDir = join(dir, 'run');
  const trained = await runCli(['train', '--config', configFile, '--data', data, '--steps', '8', '--batch', '32', '--bank-size', '128', '--run-dir', runDir]);
  assert.equal(trained.code, 0, trained.stderr);
  const checkpoint = join(runDir, 'checkpoint.ibck');
  const ck = await readCheckpoint(checkpoint);
  assert.equal(ck.tensors['table.site_id'], undefined, 'no ID rows');
  const out = join(dir, 'export');
  const exported = await runCli(['export', checkpoint, '--out', out]);
  assert.equal(exported.code, 0, exported.stderr);
  checkOnnxModel(join(out, EXPORT_FILES.siteTower));
  const manifest = JSON.parse(readFileSync(join(out, EXPORT_FILES.manifest), 'utf8'));
  assert.equal(manifest.towers.site_inputs, undefined);
  const config = { ...loadConfig(join(runDir, 'config.json')), data };
  const task = await ClickLogTask.load(config);
  restoreModelState(ck, 'checkpoint', task);
  const { sites } = task.data.log;
  const expected = await task.model.embedSites(
    Int32Array.from(sites, (_, i) => i),
    (ck.meta as { step: number }).step,
  );
  expectArraysClose((await runTower(join(out, EXPORT_FILES.siteTower), sites)).embedding, expected, { atol: 2e-6, rtol: 1e-4 });
});
