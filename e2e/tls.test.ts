import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, type Config } from '../common/config/mod.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { CLI_BIN, runCli } from '../testing/cli-harness.js';
import { issueTestClientCertificate, makeTestPki, tempDir } from '../testing/test-helpers.js';

const cli = runCli;

test('mutual TLS on every channel: a job trains; a worker with another CA, no TLS, a certificate for another id or a wrong token is refused with one clear line', {
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 600, sites: 60, seed: 24 });
  const good = makeTestPki(dir, 'job');
  const rogue = makeTestPki(dir, 'rogue');
  const config = (tls: Partial<Config['tls']>, runDir: string): string => {
    const c = defaultConfig();
    Object.assign(c, { data, run_dir: join(dir, runDir) });
    Object.assign(c.train, { steps: 6, batch: 16, log_every: 1 });
    Object.assign(c.bank, { size: 100 });
    Object.assign(c.clicklog, { hash_buckets: 1 << 12, embedding_dim: 16, hidden_dim: 32, output_dim: 16 });
    Object.assign(c.eval, { enabled: false });
    Object.assign(c.tls, tls);
    const path = join(dir, `${runDir}.json`);
    writeFileSync(path, JSON.stringify(c));
    return path;
  };

  // One certificate for the whole job: any worker may use it (tls.worker_identity: ca).
  const ok = await cli(['train', '--config', config({ ...good, worker_identity: 'ca' }, 'tls-run'), '--workers', '2', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout.trim().split('\n').at(-1)!) as { steps: number }).steps, 6);

  // A coordinator waiting for one worker; each intruder below is turned away and the coordinator stays up.
  const coordinatorConfig = config(good, 'guarded');
  const coordinator = execFile(process.execPath, [CLI_BIN, 'coordinator', '--config', coordinatorConfig, '--workers', '1', '--token', 'secret']);
  t.after(() => coordinator.kill('SIGKILL'));
  const address = await new Promise<string>((resolve) => {
    let err = '';
    coordinator.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (\S+);/.exec(err);
      if (m) resolve(m[1]!);
    });
  });
  const worker = (cfg: string, token: string) =>
    cli(['worker', '--coordinator', address, '--config', cfg, '--worker-id', 'intruder', '--connect-timeout', '2'], { INFOBOUND_TOKEN: token });
  const own = issueTestClientCertificate(dir, 'job', 'intruder');
  for (const [what, cfg, token, pattern] of [
    ['a certificate of another CA', config(rogue, 'rogue'), 'secret', /coordinator Join: .*(UNAVAILABLE|No connection|handshake|certificate)/i],
    ['no TLS', config({}, 'plain'), 'secret', /coordinator .* unreachable for 2 s: coordinator Join: /],
    [
      'a certificate that does not name its worker id',
      config(good, 'other-id'),
      'secret',
      /worker id "intruder" is not a name of the caller's certificate \(job-node/,
    ],
    ['a wrong token', config({ ...good, ...own }, 'token'), 'nope', /wrong join token/],
  ] as const) {
    const r = await worker(cfg, token);
    assert.notEqual(r.code, 0, `${what} was let in`);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines.at(-1)!, /^infobound: /, `${what}: ${r.stderr}`);
    assert.match(lines.at(-1)!, pattern, what);
    assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: no stack trace`);
  }
  assert.equal(coordinator.exitCode, null, 'the coordinator is still serving');
});
