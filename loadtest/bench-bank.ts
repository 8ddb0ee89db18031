import { randomBytes } from 'node:crypto';
/**
 * `npm run bench:bank [-- --json] [--messages N] [--steps S]`
 *
 * The bank over NATS JetStream (issue 4), on a nats-server (Debian's package) started here on 127.0.0.1
 * with a temporary store:
 *
 * 1. Publish-and-apply throughput: one worker's transport runs N steps of d = 128 keys at 256 and 1024
 *    keys per message, each step as training does it — publish, wait until the stream delivers the
 *    step's keys back, add them to a K = 65,536 replica. Baseline in the same run: the embedded
 *    in-process transport doing the same.
 * 2. Step-time overhead at W = 2: `infobound train --workers 2` on the default click-log config with
 *    the bank over NATS (staleness 0, MoCo's synchronous queue) against the same run with the bank
 *    around the worker ring, the multi-worker transport without NATS. Goal: ≤ 10%.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../common/config/mod.js';
import { Rng } from '../common/random.js';
import { writeSyntheticClickLog } from '../common/synthetic-clicklog.js';
import { InProcessBankLog, type BankStream } from '../worker/bank/bank-stream.js';
import { KeyBank } from '../worker/bank/key-bank.js';
import { NatsBankStream } from '../worker/bank/nats-bank-stream.js';
import { NatsTestServer } from '../testing/nats-test-server.js';
import { StreamBankTransport } from '../worker/bank/stream-bank-transport.js';
import { benchOne, killGroup } from './train-throughput.js';

const DIM = 128;
const BANK = 65_536;
/** The whole run stops (exit 1) past this. */
const RUN_DEADLINE_MS = 300_000;

/** One `--json` object of part 1 (field names are an interface). */
interface ThroughputResult {
  part: 'publish_apply';
  transport: 'in-process' | 'nats';
  keys_per_message: number;
  messages: number;
  keys_per_s: number;
  mb_per_s: number;
  /** Mean wall time of one publish-and-apply round trip. */
  ms_per_message: number;
}

/** Runs `messages` steps of `n` keys through a fresh transport on `stream`. */
async function publishAndApply(stream: BankStream, transport: ThroughputResult['transport'], n: number, messages: number): Promise<ThroughputResult> {
  const t = await StreamBankTransport.open(stream, {
    runId: `bench-${n}`,
    bankKey: randomBytes(32),
    dim: DIM,
    itemCount: n,
    capacity: BANK,
    staleness: 0,
    timeoutMs: 30_000,
  });
  const bank = new KeyBank(BANK, DIM);
  const rng = new Rng(n);
  const keys = Float32Array.from({ length: n * DIM }, () => rng.normal());
  const ids = Int32Array.from({ length: n }, (_, i) => i);
  await t.rebuild(bank, 0);
  const t0 = performance.now();
  for (let step = 1; step <= messages; step++) {
    for (const m of await t.exchange({ keys, ids, step, producer: 0 }, { generation: 1, world: 1 })) bank.enqueue(m);
  }
  const seconds = (performance.now() - t0) / 1000;
  await t.close();
  const total = n * messages;
  return {
    part: 'publish_apply',
    transport,
    keys_per_message: n,
    messages,
    keys_per_s: total / seconds,
    mb_per_s: (total * DIM * 4) / 1e6 / seconds,
    ms_per_message: (seconds * 1000) / messages,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      messages: { type: 'string', default: '300' },
      steps: { type: 'string', default: '60' },
    },
  });
  const messages = Number(values.messages);
  const steps = Number(values.steps);
  if (!Number.isInteger(messages) || messages < 1) throw new Error(`--messages: expected a positive integer, got "${values.messages}"`);
  const { batch, log_every: logEvery } = defaultConfig().train;
  if (!Number.isInteger(steps) || steps < 2 * logEvery) throw new Error(`--steps: expected an integer of at least ${2 * logEvery}, got "${values.steps}"`);

  const dir = await mkdtemp(join(tmpdir(), 'infobound-bench-bank-'));
  const server = await NatsTestServer.startDetached();
  process.once('exit', () => {
    killGroup();
    void server.kill();
    rmSync(dir, { recursive: true, force: true });
    rmSync(server.storeDir, { recursive: true, force: true });
  });
  try {
    await measure(server, dir, messages, steps, batch, values.json);
  } finally {
    // The server's output pipe would keep this process alive.
    await server.stop();
  }
}

async function measure(server: NatsTestServer, dir: string, messages: number, steps: number, batch: number, json: boolean): Promise<void> {
  setTimeout(() => {
    console.error(`bench-bank: over ${RUN_DEADLINE_MS / 1000} s, stopping (fewer --messages or --steps?)`);
    process.exit(1);
  }, RUN_DEADLINE_MS).unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  const load0 = loadavg();

  const natsConfig = { ...defaultConfig().nats, url: server.url };
  const throughput: ThroughputResult[] = [];
  for (const n of [256, 1024]) {
    const limit = Math.ceil(BANK / n) + 64;
    throughput.push(await publishAndApply(new InProcessBankLog(limit).handle(), 'in-process', n, messages));
    throughput.push(await publishAndApply(await NatsBankStream.open(natsConfig, `bench-${n}`, limit, 'bench-bank'), 'nats', n, messages));
    console.error(`bench-bank: ${n} keys per message done`);
  }

  const data = join(dir, 'clicks.tsv');
  await writeSyntheticClickLog(data, { queries: 20_000, sites: 2_000, seed: 1 });
  const ring = await benchOne('cluster', 2, data, join(dir, 'run-ring'), steps, batch);
  console.error(`bench-bank: ring bank ×2: ${ring.wall_ms_per_step.toFixed(1)} ms/step`);
  const nats = await benchOne('cluster-nats', 2, data, join(dir, 'run-nats'), steps, batch, ['--nats', server.url]);
  console.error(`bench-bank: NATS bank ×2: ${nats.wall_ms_per_step.toFixed(1)} ms/step`);
  const overhead = nats.wall_ms_per_step / ring.wall_ms_per_step - 1;

  if (json) {
    for (const r of throughput) console.log(JSON.stringify(r));
    for (const r of [ring, nats]) console.log(JSON.stringify({ part: 'step_time', ...r, overhead_vs_ring: r === nats ? overhead : 0 }));
    return;
  }
  console.log(
    `bench:bank: d = ${DIM}, K = ${BANK}, ${messages} messages per row; ${availableParallelism()} CPUs, load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start`,
  );
  console.log('');
  console.log('publish-and-apply  keys/msg     keys/s     MB/s  ms/msg');
  for (const r of throughput) {
    console.log(
      `${r.transport.padEnd(17)} ${String(r.keys_per_message).padStart(9)} ${r.keys_per_s.toFixed(0).padStart(10)} ${r.mb_per_s.toFixed(1).padStart(8)} ${r.ms_per_message.toFixed(2).padStart(7)}`,
    );
  }
  console.log('');
  console.log(`step time at W = 2 (default click-log config, batch ${batch} per worker, steps ${ring.window_from_step}…${steps}):`);
  console.log('bank       wall ms/step  examples/s  bank-wait ms');
  for (const [name, r] of [
    ['ring', ring],
    ['NATS', nats],
  ] as const) {
    console.log(
      `${name.padEnd(10)} ${r.wall_ms_per_step.toFixed(1).padStart(12)} ${r.examples_per_s.toFixed(0).padStart(11)} ${r.bank_wait_ms.toFixed(1).padStart(13)}`,
    );
  }
  console.log(`NATS overhead: ${(overhead * 100).toFixed(1)}% of the ring's step time (goal ≤ 10%)`);
}

await main();
