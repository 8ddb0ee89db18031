import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readCheckpoint } from '../common/checkpoint-file.js';
import type { Config } from '../common/config/mod.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { expectArraysClose, tempDir } from '../testing/test-helpers.js';
import { BIN, smallJob } from '../testing/cluster-test-helpers.js';

const run = promisify(execFile);
const BATCH = 16;
const STEPS = 5;

/** A small click-log job whose site→query term uses groups of BATCH rows (one worker's batch). */
function jobConfig(data: string, runDir: string, batch: number, staleness = 0, siteIds = false): Config {
  const c = smallJob(data, runDir, { steps: STEPS, batch }, 100);
  c.clicklog.site_term_group = BATCH;
  c.clicklog.site_ids = siteIds;
  c.bank.staleness = staleness;
  return c;
}

async function train(config: Config, dir: string, extra: string[]): Promise<{ lines: Record<string, unknown>[] }> {
  const path = join(dir, `config-${extra.join('')}.json`);
  writeFileSync(path, JSON.stringify(config));
  const r = await run(process.execPath, [BIN, 'train', '--config', path, '--json', ...extra], { maxBuffer: 64 << 20 });
  return {
    lines: r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

// With a staleness bound the ring's delayed keys must be the in-process stream's: same update again.
for (const [workers, staleness, siteIds] of [
  [2, 0, false],
  [3, 0, false],
  [2, 2, false],
  [2, 0, true],
] as const) {
  test(`${workers} workers make the update of one worker on the concatenated batches${staleness > 0 ? ` (bank.staleness ${staleness})` : ''}${siteIds ? ' (site ID embeddings)' : ''}`, async (t) => {
    const dir = tempDir(t);
    const data = join(dir, 'clicks.tsv');
    await writeSyntheticClickLog(data, { queries: 2000, sites: 200, seed: 11 });
    const cluster = await train(jobConfig(data, join(dir, 'cluster'), BATCH, staleness, siteIds), dir, ['--workers', String(workers)]);
    await train(jobConfig(data, join(dir, 'single'), BATCH * workers, staleness, siteIds), dir, []);

    const summary = cluster.lines.at(-1) as { type: string; steps: number; generation: number; restarts: number; examples: number };
    assert.equal(summary.type, 'summary');
    assert.equal(summary.steps, STEPS);
    assert.equal(summary.restarts, 0);
    assert.equal(summary.examples, STEPS * BATCH * workers);
    const steps = cluster.lines.filter((l) => l.type === 'step') as { step: number; worker: number; bank_digest: string }[];
    // Until keys have joined the bank (step 1, plus the staleness bound) no bounds, hence no line; every later step is logged.
    assert.equal(steps.length, (STEPS - 1 - staleness) * workers, 'one step line per worker per logged step');
    for (let s = 2 + staleness; s <= STEPS; s++) {
      const digests = new Set(steps.filter((l) => l.step === s).map((l) => l.bank_digest));
      assert.equal(digests.size, 1, `bank replicas agree at step ${s}`);
    }

    const a = await readCheckpoint(join(dir, 'cluster', 'checkpoint.ibck'));
    const b = await readCheckpoint(join(dir, 'single', 'checkpoint.ibck'));
    assert.equal(a.meta.step, STEPS);
    assert.equal(a.meta.position, b.meta.position, 'both consumed the same stream positions');
    assert.deepEqual(Object.keys(a.tensors).sort(), Object.keys(b.tensors).sort());
    assert.equal('table.site_id' in a.tensors, siteIds, 'the ID rows are in the checkpoint when they are trained');
    for (const name of Object.keys(a.tensors)) {
      expectArraysClose(a.tensors[name]!.data, b.tensors[name]!.data, { atol: 2e-5, rtol: 1e-3 });
    }
  });
}
