import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import test from 'node:test';
import { KEY_AGE_BUCKETS } from './key-age-buckets.js';
import { InfoboundMetrics, METRIC_NAMES, STEP_PHASES } from './metrics.js';
import { serveMetrics } from './metrics-server.js';
import { UserError } from './user-error.js';

/** The value of one sample line `name{labels} value` of an exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function fedMetrics(now: () => number): InfoboundMetrics {
  const m = new InfoboundMetrics('worker', now);
  m.setTrueMi(4.12);
  m.membership(3, 2, true);
  for (let i = 0; i < 3; i++) {
    const logged = i === 2;
    m.step(256, {
      loss: 4.5 - i,
      bounds: logged ? { infonce: 3.9, nwj: 3.8, dv: 3.85, jsd: -7 } : { infonce: 0, nwj: 0, dv: 0, jsd: 0 },
      ceiling: Math.log(4097),
      temperature: 0.07,
      accuracy: logged ? 0.25 : 0,
      examples_per_s: 5000,
      grad_norm: 1,
      bank_fill: logged ? 1 : 0,
      bank_digest: '',
      bank_shard_digest: '',
      bank_lag: logged ? 2 : 0,
      key_age_steps: logged ? 3.5 : 0,
      key_age_counts: logged ? [10, 0, 5, ...new Array<number>(KEY_AGE_BUCKETS.length - 2).fill(0)] : [],
      data_ms: 1,
      compute_ms: 40,
      allreduce_ms: 12,
      bank_wait_ms: 2,
      params_digest: '',
      logged,
      epoch: 0,
    });
    m.collective(1000, 12);
  }
  m.memory({ bank: 100, tables: 2000, optimizer: 30, dense: 4, data: 500 });
  m.memory({ bank: 100, tables: 2000, optimizer: 30, dense: 4, data: 700 });
  m.skippedInputs({ wrong_column_count: 3 });
  m.skippedInputs({ wrong_column_count: 5, bank_nan_key: 1 });
  m.refusal('stale_generation');
  m.refusedTotals({ peer_credential: 2 });
  m.refusedTotals({ peer_credential: 3, peer_sender: 0 });
  m.commit(512);
  m.checkpointNow();
  return m;
}

test('every figure lands in its metric, counters only move up, and the checkpoint age follows the clock', async () => {
  let clock = 1_000_000;
  const m = fedMetrics(() => clock);
  clock += 7_500;
  const text = await m.text();
  const n = METRIC_NAMES;
  assert.equal(sample(text, `${n.bound}{estimator="infonce",role="worker"}`), 3.9);
  assert.equal(sample(text, `${n.ceiling}{role="worker"}`), Math.log(4097));
  assert.equal(sample(text, `${n.trueMi}{role="worker"}`), 4.12);
  assert.equal(sample(text, `${n.loss}{role="worker"}`), 2.5);
  assert.equal(sample(text, `${n.accuracy}{role="worker"}`), 0.25);
  assert.equal(sample(text, `${n.steps}{role="worker"}`), 3);
  assert.equal(sample(text, `${n.examples}{role="worker"}`), 768);
  for (const phase of STEP_PHASES) assert.equal(sample(text, `${n.stepPhase}_count{role="worker",phase="${phase}"}`), 3);
  assert.equal(sample(text, `${n.stepPhase}_sum{role="worker",phase="compute"}`), 0.12);
  assert.equal(sample(text, `${n.allreduceBytes}{role="worker"}`), 3000);
  assert.equal(sample(text, `${n.allreduceSeconds}_count{role="worker"}`), 3);
  assert.equal(sample(text, `${n.bankLag}{role="worker"}`), 2);
  // Cumulative like histogram buckets: ≤1 step 10 keys, ≤2 still 10, ≤4 15, … +Inf 15.
  assert.equal(sample(text, `${n.bankKeys}{max_age_steps="1",role="worker"}`), 10);
  assert.equal(sample(text, `${n.bankKeys}{max_age_steps="4",role="worker"}`), 15);
  assert.equal(sample(text, `${n.bankKeys}{max_age_steps="+Inf",role="worker"}`), 15);
  assert.equal(sample(text, `${n.generation}{role="worker"}`), 3);
  assert.equal(sample(text, `${n.members}{role="worker"}`), 2);
  assert.equal(sample(text, `${n.restarts}{role="worker"}`), 1);
  assert.equal(sample(text, `${n.skipped}{reason="wrong_column_count",role="worker"}`), 5, 'totals, not sums of totals');
  assert.equal(sample(text, `${n.skipped}{reason="bank_nan_key",role="worker"}`), 1);
  assert.equal(sample(text, `${n.refused}{reason="stale_generation",role="worker"}`), 1);
  assert.equal(sample(text, `${n.refused}{reason="peer_credential",role="worker"}`), 3, 'a Peer server’s totals, not their sum');
  assert.equal(sample(text, `${n.refused}{reason="peer_sender",role="worker"}`), 0);
  assert.equal(sample(text, `${n.committedExamples}{role="worker"}`), 512);
  assert.equal(sample(text, `${n.checkpointAge}{role="worker"}`), 7.5);
  assert.equal(sample(text, `${n.memory}{part="tables",role="worker"}`), 2000);
  assert.equal(sample(text, `${n.memory}{part="data",role="worker"}`), 700, 'the latest figure, not a sum');
  // Every name in METRIC_NAMES is exposed.
  for (const name of Object.values(n)) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
});

test('promtool check metrics accepts the exposition text (Debian prometheus package)', async () => {
  const text = await fedMetrics(() => Date.now()).text();
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, 'promtool runs (apt-get install prometheus)');
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint warnings');
});

test('the endpoint serves GET /metrics and 404 elsewhere; a port in use is a one-line error', async () => {
  const m = fedMetrics(() => Date.now());
  const server = await serveMetrics(m, '127.0.0.1', 0);
  try {
    const ok = await fetch(`http://${server.address}/metrics`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await ok.text(), /^infobound_steps_total\{role="worker"\} 3$/m);
    assert.equal((await fetch(`http://${server.address}/`)).status, 404);
    const port = Number(server.address.split(':').at(-1));
    await assert.rejects(
      serveMetrics(m, '127.0.0.1', port),
      (err: Error) => err instanceof UserError && /--metrics-port \d+: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/.test(err.message),
    );
  } finally {
    await server.close();
  }
  // The port is free again after close.
  await new Promise<void>((resolve, reject) => {
    const probe = createServer().once('error', reject);
    probe.listen(Number(server.address.split(':').at(-1)), '127.0.0.1', () => probe.close(() => resolve()));
  });
});
