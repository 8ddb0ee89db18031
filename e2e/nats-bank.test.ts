import test from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { readCheckpoint } from '../common/checkpoint-file.js';
import { BankKeysType, SignedBankKeysType } from '../common/proto.js';
import type { Config } from '../common/config/mod.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { expectArraysClose, tempDir } from '../testing/test-helpers.js';
import { NatsTestServer } from '../testing/nats-test-server.js';
import { exited, freePort, smallJob, startCli, writeConfig } from '../testing/cluster-test-helpers.js';

type Line = { type: string; step?: number; worker?: number; bank_digest?: string; steps?: number; skipped_inputs?: Record<string, number> };

/** `train --workers N` with JSON lines; `onLine` sees each line as it comes. */
async function trainCluster(
  cfg: string,
  workers: number,
  extra: string[],
  onLine: (l: Line) => void = () => {},
): Promise<{ code: number | null; lines: Line[]; stderr: string }> {
  const p = startCli(['train', '--config', cfg, '--workers', String(workers), '--json', ...extra]);
  let stderr = '';
  p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines: Line[] = [];
  for await (const text of createInterface({ input: p.stdout! })) {
    const line = JSON.parse(text) as Line;
    lines.push(line);
    onLine(line);
  }
  return { code: await exited(p), lines, stderr };
}

/** Bank digest of each logged step, after checking that every worker's replica agrees at it. */
function agreedDigests(lines: Line[]): Map<number, string> {
  const byStep = new Map<number, Set<string>>();
  for (const l of lines.filter((x) => x.type === 'step')) {
    const set = byStep.get(l.step!) ?? new Set();
    set.add(l.bank_digest!);
    byStep.set(l.step!, set);
  }
  return new Map(
    [...byStep].map(([step, set]) => {
      assert.equal(set.size, 1, `replicas agree at step ${step}`);
      return [step, [...set][0]!];
    }),
  );
}

function job(dir: string, data: string, name: string, train: Partial<Config['train']>, natsTimeoutMs?: number): string {
  const c = smallJob(data, join(dir, name), train);
  if (natsTimeoutMs !== undefined) c.nats.timeout_ms = natsTimeoutMs;
  return writeConfig(dir, name, c);
}

test('3 workers on NATS: replicas agree at every committed step, and hold what the ring transport gives', { timeout: 120_000 }, async (t) => {
  const server = await NatsTestServer.start(t);
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 31 });
  const onNats = await trainCluster(job(dir, data, 'nats', { steps: 12 }), 3, ['--nats', server.url]);
  assert.equal(onNats.code, 0, onNats.stderr);
  const onRing = await trainCluster(job(dir, data, 'ring', { steps: 12 }), 3, []);
  assert.equal(onRing.code, 0, onRing.stderr);
  const nats = agreedDigests(onNats.lines);
  assert.equal(nats.size, 11, 'steps 2..12 logged');
  assert.deepEqual(nats, agreedDigests(onRing.lines), 'the same keys in the same order as around the ring');
  const a = await readCheckpoint(join(dir, 'nats', 'checkpoint.ibck'));
  const b = await readCheckpoint(join(dir, 'ring', 'checkpoint.ibck'));
  for (const name of Object.keys(b.tensors)) expectArraysClose(a.tensors[name]!.data, b.tensors[name]!.data, { atol: 1e-6 });
  assert.ok((a.meta.bank as { stream_seq: number }).stream_seq >= 12 * 3, 'the checkpoint records the stream position');
});

test('nats-server killed and started again on its store mid-run: no committed key is lost and training goes on', { timeout: 120_000 }, async (t) => {
  const server = await NatsTestServer.start(t);
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 32 });
  const STEPS = 60;
  let outage: Promise<void> | undefined;
  const run = await trainCluster(job(dir, data, 'nats', { steps: STEPS }), 2, ['--nats', server.url], (l) => {
    if (outage === undefined && l.step !== undefined && l.step >= 8) {
      outage = (async () => {
        await server.kill();
        await new Promise((r) => setTimeout(r, 1000));
        await server.restart();
      })();
    }
  });
  await outage;
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.lines.at(-1)!.steps, STEPS);
  const reference = await trainCluster(job(dir, data, 'ring', { steps: STEPS }), 2, []);
  assert.equal(reference.code, 0, reference.stderr);
  // Every replica agrees at every step, before and after the outage, with a run that had none.
  assert.deepEqual(agreedDigests(run.lines), agreedDigests(reference.lines));
});

test('NATS down past its timeout: the workers stop with a clear error and the last checkpoint stays intact', { timeout: 120_000 }, async (t) => {
  const server = await NatsTestServer.start(t);
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 33 });
  let killed: Promise<void> | undefined;
  const run = await trainCluster(job(dir, data, 'nats', { steps: 400, checkpoint_every: 5 }, 1500), 2, ['--nats', server.url], (l) => {
    if (killed === undefined && l.step !== undefined && l.step >= 12) killed = server.kill();
  });
  await killed;
  assert.notEqual(run.code, 0);
  const lastLine = run.stderr.trim().split('\n').at(-1)!;
  assert.match(lastLine, /bank: could not .* within 1\.5 s.*is NATS reachable\?|bank: could not .* for 1\.5 s/);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  const checkpoint = join(dir, 'nats', 'checkpoint.ibck');
  assert.ok(existsSync(checkpoint));
  const ck = await readCheckpoint(checkpoint);
  assert.equal((ck.meta.step as number) % 5, 0);
  assert.ok((ck.meta.step as number) >= 10);
});

test('a coordinator restarted from a checkpoint: the workers rebuild the bank of the checkpoint from the stream', { timeout: 120_000 }, async (t) => {
  const server = await NatsTestServer.start(t);
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 34 });
  // Far more steps than the kill point: the job must still be running when its coordinator is killed.
  const cfg = job(dir, data, 'run', { steps: 200, checkpoint_every: 5 });
  const port = String(await freePort());
  const coordinatorArgs = ['coordinator', '--config', cfg, '--workers', '2', '--json', '--port', port, '--nats', server.url];
  const readLines = async (p: ChildProcess, until: (l: Line) => boolean): Promise<Line[]> => {
    const lines: Line[] = [];
    for await (const text of createInterface({ input: p.stdout! })) {
      lines.push(JSON.parse(text) as Line);
      if (until(lines.at(-1)!)) break;
    }
    return lines;
  };
  const first = startCli(coordinatorArgs);
  t.after(() => first.kill('SIGKILL'));
  const workers = [0, 1].map((i) => startCli(['worker', '--coordinator', `127.0.0.1:${port}`, '--config', cfg, '--worker-id', `w${i}`, '--nats', server.url]));
  t.after(() => workers.forEach((w) => w.kill('SIGKILL')));
  let workerLog = '';
  for (const w of workers) w.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
  const before = await readLines(first, (l) => (l.step ?? 0) >= 13);
  first.kill('SIGKILL');
  await exited(first);
  const second = startCli(coordinatorArgs);
  t.after(() => second.kill('SIGKILL'));
  const after = await readLines(second, (l) => l.type === 'summary');
  assert.equal(await exited(second), 0);
  assert.equal(after.at(-1)!.steps, 200);
  const resumed = Math.min(...after.filter((l) => l.type === 'step').map((l) => l.step!));
  assert.match(workerLog, new RegExp(`rebuilt the bank from the stream at step ${resumed - 1}`));
  // Every step trained twice starts from the same bank both times: the replica rebuilt at the
  // checkpoint is the checkpoint's bank, and the resumed training is the same computation.
  const beforeDigests = agreedDigests(before);
  const afterDigests = agreedDigests(after);
  const twice = [...afterDigests.keys()].filter((s) => beforeDigests.has(s));
  assert.ok(twice.includes(resumed) && twice.length >= 2, `steps ${twice.join(', ')} were trained before the restart too`);
  for (const s of twice) assert.equal(afterDigests.get(s), beforeDigests.get(s), `bank at step ${s}`);
});

test('a forger and a flood on the NATS bank during a 2-worker run: the job ends with the replicas of a clean run, every forgery counted', {
  timeout: 120_000,
}, async (t) => {
  const server = await NatsTestServer.start(t);
  const dir = tempDir(t);
  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 1000, sites: 100, seed: 35 });
  const clean = await trainCluster(job(dir, data, 'clean', { steps: 12 }), 2, ['--nats', server.url]);
  assert.equal(clean.code, 0, clean.stderr);

  // The attacker can reach NATS (no authorization here) and reads every genuine message as it is
  // published; it has no member credential, so not the job's bank key.
  const nc = await connect({ servers: server.url });
  t.after(() => nc.close());
  const js = jetstream(nc);
  const attacks: Promise<unknown>[] = [];
  let forged = 0;
  let flooded = false;
  const ours = new Set<string>();
  const publish = (subject: string, data: Uint8Array, msgID?: string) => {
    ours.add(Buffer.from(data).toString('base64'));
    return js.publish(subject, data, msgID === undefined ? {} : { msgID }).then(() => forged++);
  };
  const sub = nc.subscribe('ib.*.bank.*');
  const sniffing = (async () => {
    for await (const m of sub) {
      // Its own messages come back too: it reads only the producers' genuine ones.
      if (!/\.[01]$/.test(m.subject) || ours.delete(Buffer.from(m.data).toString('base64'))) continue;
      const signed = SignedBankKeysType.toObject(SignedBankKeysType.decode(m.data), { bytes: Buffer, defaults: true }) as {
        bank_keys: Buffer;
        hmac_sha256: Buffer;
      };
      const body = BankKeysType.toObject(BankKeysType.decode(signed.bank_keys), { longs: Number, bytes: Buffer, defaults: true }) as Record<string, unknown>;
      const { run_id: run, step, producer, generation } = body as { run_id: string; step: number; producer: number; generation: number };
      const prefix = m.subject.slice(0, m.subject.lastIndexOf('.'));
      // The next step's keys, first: zero keys and item ids past the data's, under the genuine MAC
      // (which does not cover them) and the id the genuine message would have had before it carried its MAC.
      const ids = Buffer.from(Int32Array.from({ length: 16 }, () => 1 << 20).buffer);
      const next = BankKeysType.encode(
        BankKeysType.fromObject({ ...body, step: step + 1, keys: Buffer.alloc((body.keys as Buffer).byteLength), ids }),
      ).finish();
      const fake = SignedBankKeysType.encode(SignedBankKeysType.fromObject({ bank_keys: next, hmac_sha256: signed.hmac_sha256 })).finish();
      attacks.push(publish(m.subject, fake, `${run}.${generation}.${step + 1}.${producer}`));
      // The genuine message replayed as the other producer's.
      attacks.push(publish(`${prefix}.${1 - producer}`, m.data));
      if (!flooded) {
        flooded = true;
        // 3,000 messages on a subject of the stream that no producer uses.
        for (let i = 0; i < 3000; i++) attacks.push(js.publish(`${prefix}.7`, Buffer.from(`garbage ${i}`)));
      }
    }
  })();
  const attacked = await trainCluster(job(dir, data, 'attacked', { steps: 12 }), 2, ['--nats', server.url]);
  sub.unsubscribe();
  await sniffing;
  await Promise.allSettled(attacks);
  assert.equal(attacked.code, 0, attacked.stderr);
  assert.ok(flooded && forged >= 20, `${forged} forgeries stored`);
  assert.deepEqual(agreedDigests(attacked.lines), agreedDigests(clean.lines), 'the same keys at every step as without the attacker');
  const skipped = attacked.lines.at(-1)!.skipped_inputs!;
  // The summary is rank 0's count of what it read while it ran (how many of the forgeries came in
  // time depends on the machine's load): the forgeries and the flood, none applied.
  assert.ok((skipped.bank_unauthenticated ?? 0) > 0, JSON.stringify(skipped));
  const a = await readCheckpoint(join(dir, 'attacked', 'checkpoint.ibck'));
  const b = await readCheckpoint(join(dir, 'clean', 'checkpoint.ibck'));
  for (const name of Object.keys(b.tensors)) expectArraysClose(a.tensors[name]!.data, b.tensors[name]!.data, { atol: 1e-6 });
});
