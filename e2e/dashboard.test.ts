import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { tempDir } from '../testing/test-helpers.js';
import { exited, freePort, smallJob, startCli, writeConfig } from '../testing/cluster-test-helpers.js';

const DASHBOARD = new URL('../../deploy/grafana/infobound.json', import.meta.url).pathname;

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

/** Every PromQL expression of the dashboard, with its panel's title. */
function dashboardQueries(): { panel: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}

/** A real Prometheus (Debian's package) scraping `targets` every second, on a free loopback port. */
async function startPrometheus(dir: string, targets: string[]): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: infobound',
      '    static_configs:',
      `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const p = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  p.stderr!.on('data', (d: Buffer) => appendFileSync(join(dir, 'prometheus.log'), d));
  await new Promise<void>((resolve, reject) => {
    p.once('error', (err) => reject(new Error(`cannot start prometheus (apt-get install prometheus): ${err.message}`)));
    p.once('spawn', () => resolve());
  });
  return { url: `http://127.0.0.1:${port}`, process: p };
}

/** Series an instant query returns (0 while Prometheus is not up yet). */
async function seriesOf(prometheus: string, expr: string): Promise<number> {
  try {
    const r = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await r.json()) as { status: string; error?: string; data?: { result: unknown[] } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data!.result.length;
  } catch (err) {
    if ((err as Error).message.startsWith(expr)) throw err;
    return 0;
  }
}

test('every PromQL expression of the Grafana dashboard returns series from a real Prometheus scraping a training run', { timeout: 150_000 }, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 41 });
  // A few bad lines, so that the skipped-input series have something to count.
  appendFileSync(data, 'no tabs here\nq\tsite\tnot-a-number\n');
  const job = smallJob(data, join(dir, 'run'), { steps: 100_000, log_every: 5, checkpoint_every: 10 });
  const cfg = writeConfig(dir, 'config', job);
  const metricsPort = await freePort();
  const training = startCli(['train', '--config', cfg, '--workers', '2', '--metrics-port', String(metricsPort), '--json']);
  t.after(() => training.kill('SIGKILL'));
  let stderr = '';
  training.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  training.stdout!.resume();
  const targets = [0, 1, 2].map((i) => `127.0.0.1:${metricsPort + i}`);
  const prometheus = await startPrometheus(dir, targets);
  t.after(() => prometheus.process.kill('SIGKILL'));

  try {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 15, `the dashboard has its panels' queries (${queries.length})`);
    let empty = queries;
    const deadline = Date.now() + 90_000;
    while (empty.length > 0 && Date.now() < deadline) {
      assert.equal(training.exitCode, null, `training stopped early:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 2000));
      const counts = await Promise.all(empty.map((q) => seriesOf(prometheus.url, q.expr)));
      empty = empty.filter((_, i) => counts[i] === 0);
    }
    assert.deepEqual(
      empty.map((q) => `${q.panel}: ${q.expr}`),
      [],
      `queries with no series after 90 s; prometheus log in ${dir}`,
    );
    assert.equal(await seriesOf(prometheus.url, 'up == 1'), 3, 'the coordinator and both workers are scraped');
    // What the processes serve passes promtool's checks too.
    for (const target of targets) {
      const text = await (await fetch(`http://${target}/metrics`)).text();
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(check.status, 0, `${target}: ${check.stdout}${check.stderr}`);
      assert.equal(`${check.stdout}${check.stderr}`.trim(), '', `${target}: no lint warnings`);
    }
  } finally {
    // SIGTERM lets `train` stop its workers too; both gone before the temporary directory is removed.
    training.kill('SIGTERM');
    prometheus.process.kill('SIGKILL');
    await Promise.all([exited(training), exited(prometheus.process)]);
  }
});
