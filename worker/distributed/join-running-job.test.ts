import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { defaultConfig } from '../../common/config.js';
import { writeSyntheticClickLog } from '../../common/synthetic-clicklog.js';
import { tempDir } from '../../common/test-helpers.js';

const BIN = new URL('../../../bin/infobound.js', import.meta.url).pathname;
const STEPS = 120;

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INFOBOUND_TOKEN: 'tok' } });
}

function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (p.exitCode !== null ? resolve(p.exitCode) : p.on('exit', (code) => resolve(code))));
}

type Line = { type: string; step?: number; worker?: number; params_digest?: string; bank_digest?: string; restarts?: number; steps?: number };

test('a worker joining a running job gets the current weights before it trains', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 23 });
  const config = defaultConfig();
  Object.assign(config, { data, run_dir: join(dir, 'run') });
  Object.assign(config.train, { steps: STEPS, batch: 16, log_every: 1 });
  Object.assign(config.bank, { size: 200 });
  Object.assign(config.clicklog, { hash_buckets: 1 << 12, embedding_dim: 16, hidden_dim: 32, output_dim: 16 });
  Object.assign(config.eval, { enabled: false });
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify(config));

  const coordinator = start(['coordinator', '--config', cfg, '--workers', '2', '--json']);
  t.after(() => coordinator.kill('SIGKILL'));
  let stderr = '';
  coordinator.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const address = await new Promise<string>((resolve) => {
    coordinator.stderr!.on('data', () => {
      const m = /listening on (\S+);/.exec(stderr);
      if (m) resolve(m[1]!);
    });
  });
  const workerArgs = (i: number) => ['worker', '--coordinator', address, '--config', cfg, '--worker-id', `w${i}`];
  const workers = [start(workerArgs(0)), start(workerArgs(1))];
  t.after(() => workers.forEach((w) => w.kill('SIGKILL')));
  const lines: Line[] = [];
  for await (const line of createInterface({ input: coordinator.stdout! })) {
    lines.push(JSON.parse(line) as Line);
    if (workers.length === 2 && lines.at(-1)!.step! >= 3) workers.push(start(workerArgs(2)));
    if (lines.at(-1)!.type === 'summary') break;
  }
  assert.equal(await exited(coordinator), 0, stderr);
  for (const w of workers) assert.equal(await exited(w), 0);
  const summary = lines.at(-1)!;
  assert.equal(summary.steps, STEPS);
  assert.ok(summary.restarts! >= 1);
  const joined = lines.filter((l) => l.type === 'step' && l.worker === 2);
  assert.ok(joined.length > 5, 'the new worker trained');
  // From its first step on, the new worker starts every step from the same weights and bank as the others.
  for (const l of joined) {
    const peers = lines.filter((x) => x.type === 'step' && x.step === l.step);
    assert.equal(new Set(peers.map((x) => x.params_digest)).size, 1, `parameters agree at step ${l.step}`);
    assert.equal(new Set(peers.map((x) => x.bank_digest)).size, 1, `banks agree at step ${l.step}`);
  }
});
