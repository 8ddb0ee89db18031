/**
 * `npm run bench:allreduce [-- --json] [--worlds 2,3,4] [--sizes-mib 1,16,64] [--chunk-bytes N] [--window-bytes N] [--transports data-plane,grpc]`
 *
 * Bus bandwidth of the ring all-reduce (RingReducer, over the data plane and over gRPC), the figure NCCL and Horovod report:
 * 2·(W−1)/W · bytes / time, the bytes each worker sends and receives divided by the time, so it is
 * comparable across world sizes. Each worker is its own process (worker/collective/ring-fixture.ts),
 * all on 127.0.0.1; the time of a repetition is the slowest worker's, the figure the median over
 * repetitions after a warm-up. The baseline, measured in the same run: raw loopback TCP, one node
 * socket pair pushing 256 MiB. With --json, one object per (world, size) on its own line.
 */
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { RingFixtureClient } from '../testing/ring-fixture-client.js';

/** RingReducer's transports, each benchmarked in turn. */
const TRANSPORTS = ['data-plane', 'grpc'] as const;
type Transport = (typeof TRANSPORTS)[number];

/** Bytes the TCP baseline pushes, and the size of each write. */
const TCP_BYTES = 256 * 2 ** 20;
const TCP_BLOCK = 2 ** 20;
/** The whole run stops (exit 1) past this; it normally takes well under it. */
const RUN_DEADLINE_MS = 115_000;

/** The `--json` object of one (world, size) (the field names are an interface). */
interface Result {
  world: number;
  /** How chunks travelled: the data plane (raw framing over TCP) or the gRPC Collective call. */
  transport: Transport;
  /** float32 buffer all-reduced, bytes. */
  bytes: number;
  /** Median over repetitions of the slowest worker's time. */
  ms: number;
  /** bytes / time, GB/s (1e9 bytes per second). */
  algo_gb_per_s: number;
  /** 2·(W−1)/W · bytes / time, GB/s. */
  bus_gb_per_s: number;
  /** Loopback TCP throughput of one socket pair measured in the same run, GB/s. */
  tcp_gb_per_s: number;
  /** bus_gb_per_s / tcp_gb_per_s. */
  bus_to_tcp: number;
  repetitions: number;
  /** One process per worker (true here), so the figure includes real inter-process traffic. */
  process_per_worker: boolean;
  cpus: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Rejects after `ms` unless `p` settles first. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Bytes per second one loopback TCP socket carries, from the first write to the last byte read. */
async function loopbackTcpBytesPerSecond(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const done = new Promise<number>((resolve) => {
    server.once('connection', (sock: Socket) => {
      let n = 0;
      sock.on('data', (d: Buffer) => {
        n += d.length;
        if (n >= TCP_BYTES) resolve(performance.now());
      });
    });
  });
  const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(sock, 'connect');
  const block = Buffer.alloc(TCP_BLOCK, 7);
  const t0 = performance.now();
  for (let sent = 0; sent < TCP_BYTES; sent += TCP_BLOCK) if (!sock.write(block)) await once(sock, 'drain');
  const t1 = await within(done, 30_000, 'the TCP baseline');
  sock.destroy();
  server.close();
  return TCP_BYTES / ((t1 - t0) / 1000);
}

/** Repetitions per size: enough for a median, few enough for the time bound. */
function repetitionsFor(bytes: number): number {
  return bytes <= 2 ** 20 ? 20 : bytes <= 16 * 2 ** 20 ? 6 : 3;
}

async function benchWorld(world: number, transport: Transport, sizes: number[], fixtureArgs: string[], tcp: number): Promise<Result[]> {
  const ring = await RingFixtureClient.start(world, { args: fixtureArgs, replyTimeoutMs: 60_000 });
  try {
    await ring.setTopology(1);
    const results: Result[] = [];
    let step = 1;
    for (const bytes of sizes) {
      const reps = repetitionsFor(bytes);
      const length = bytes / 4;
      // One extra repetition first: it pays for the stream's setup and the first touch of the buffers.
      const replies = await Promise.all(ring.peers.map((_, r) => ring.request(r, { cmd: 'allreduce', step, length, seed: 1, reps: reps + 1 })));
      step += reps + 1;
      for (const [r, reply] of replies.entries()) if (!reply.ok) throw new Error(`rank ${r}: ${reply.error}`);
      if (new Set(replies.map((r) => r.sha256)).size !== 1) throw new Error(`world ${world}, ${bytes} bytes: results differ across workers`);
      const slowest = Array.from({ length: reps }, (_, i) => Math.max(...replies.map((r) => r.ms![i + 1]!)));
      const ms = median(slowest);
      const algo = bytes / (ms / 1000);
      const bus = ((2 * (world - 1)) / world) * algo;
      results.push({
        world,
        transport,
        bytes,
        ms,
        algo_gb_per_s: algo / 1e9,
        bus_gb_per_s: bus / 1e9,
        tcp_gb_per_s: tcp / 1e9,
        bus_to_tcp: bus / tcp,
        repetitions: reps,
        process_per_worker: true,
        cpus: availableParallelism(),
      });
    }
    return results;
  } finally {
    await ring.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      worlds: { type: 'string', default: '2,3,4' },
      'sizes-mib': { type: 'string', default: '1,16,64' },
      'chunk-bytes': { type: 'string' },
      'window-bytes': { type: 'string' },
      transports: { type: 'string', default: 'data-plane,grpc' },
    },
  });
  const deadline = setTimeout(() => {
    console.error(`bench-allreduce: over ${RUN_DEADLINE_MS / 1000} s, stopping`);
    process.exit(1);
  }, RUN_DEADLINE_MS);
  deadline.unref();
  const worlds = values.worlds.split(',').map(Number);
  const sizes = values['sizes-mib'].split(',').map((s) => Number(s) * 2 ** 20);
  const fixtureArgs = [
    ...(values['chunk-bytes'] ? ['--chunk-bytes', values['chunk-bytes']] : []),
    ...(values['window-bytes'] ? ['--window-bytes', values['window-bytes']] : []),
  ];
  const transports = values.transports.split(',') as Transport[];
  for (const t of transports) if (!TRANSPORTS.includes(t)) throw new Error(`--transports: ${t} is not one of ${TRANSPORTS.join(', ')}`);

  const tcp = Math.max(await loopbackTcpBytesPerSecond(), await loopbackTcpBytesPerSecond());
  if (!values.json) {
    console.log(`ring all-reduce (${transports.join(' and ')}), one process per worker on 127.0.0.1, ${availableParallelism()} CPUs`);
    console.log(`baseline: loopback TCP, one socket pair, ${TCP_BYTES / 2 ** 20} MiB: ${(tcp / 1e9).toFixed(3)} GB/s`);
    console.log('');
    console.log(' W  transport      size   median ms   algo GB/s   bus GB/s   bus/TCP');
  }
  for (const world of worlds) {
    for (const transport of transports) {
      for (const r of await benchWorld(world, transport, sizes, [...fixtureArgs, '--transport', transport], tcp)) {
        if (values.json) console.log(JSON.stringify(r));
        else {
          console.log(
            `${String(r.world).padStart(2)}  ${transport.padEnd(10)} ${`${r.bytes / 2 ** 20} MiB`.padStart(8)} ${r.ms.toFixed(1).padStart(11)} ${r.algo_gb_per_s.toFixed(3).padStart(11)} ${r.bus_gb_per_s.toFixed(3).padStart(10)} ${`${(100 * r.bus_to_tcp).toFixed(1)}%`.padStart(9)}`,
          );
        }
      }
    }
  }
  clearTimeout(deadline);
}

await main();
