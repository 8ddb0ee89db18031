/**
 * A ring worker in a process of its own, for the multi-process test and the all-reduce benchmark
 * (driven by RingFixtureClient). It serves Peer on 127.0.0.1 port 0 and prints {"address"} as its
 * first stdout line; then it answers each JSON command line on stdin with one JSON line:
 *   {"cmd":"topology","generation","rank","world","peers"}  → {"ok":true}
 *   {"cmd":"allreduce","step","length","seed","reps"}       → {"ok":true,"sha256","head","sum","ms"}
 *   {"cmd":"exit"}                                          → closes and exits
 * A failed command answers {"ok":false,"error"}.
 *
 * Flags: --timeout-ms, --chunk-bytes, --window-bytes, --transport data-plane|grpc (RingReducer options).
 */
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng } from '../common/random.js';
import { PeerServer } from '../worker/collective/peer-server.js';
import { RingReducer } from '../worker/collective/ring-reducer.js';

/** A command line of the fixture protocol. */
export type FixtureCommand =
  | { cmd: 'topology'; generation: number; rank: number; world: number; peers: string[] }
  | { cmd: 'allreduce'; step: number; length: number; seed: number; reps?: number }
  | { cmd: 'exit' };

/** A reply line of the fixture protocol. */
export interface FixtureReply {
  ok: boolean;
  error?: string;
  /** First line: the process's Peer address. */
  address?: string;
  /** allreduce: SHA-256 of the result's bytes (equal on every worker when the results are bit-identical). */
  sha256?: string;
  /** allreduce: the result's first elements. */
  head?: number[];
  /** allreduce: float64 sum of the result's elements. */
  sum?: number;
  /** allreduce: milliseconds of each repetition. */
  ms?: number[];
}

/** The gradient rank `rank` contributes to a fixture all-reduce: uniform in [−1, 1), reproducible from (seed, rank). */
export function fixtureGradient(seed: number, rank: number, length: number): Float32Array {
  const rng = new Rng(seed * 7919 + rank + 1);
  const g = new Float32Array(length);
  for (let i = 0; i < length; i++) g[i] = rng.next() * 2 - 1;
  return g;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'timeout-ms': { type: 'string' }, 'chunk-bytes': { type: 'string' }, 'window-bytes': { type: 'string' }, transport: { type: 'string' } },
  });
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const server = await PeerServer.start({ closeGraceMs: 100 });
  const reducer = new RingReducer(server, {
    timeoutMs: num(values['timeout-ms']),
    chunkBytes: num(values['chunk-bytes']),
    windowBytes: num(values['window-bytes']),
    transport: values.transport === 'grpc' ? 'grpc' : 'data-plane',
  });
  const reply = (r: FixtureReply): void => void process.stdout.write(`${JSON.stringify(r)}\n`);
  reply({ ok: true, address: server.address });
  let rank = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    const command = JSON.parse(line) as FixtureCommand;
    try {
      if (command.cmd === 'exit') break;
      if (command.cmd === 'topology') {
        rank = command.rank;
        reducer.setTopology(command);
        reply({ ok: true });
      } else {
        const grad = fixtureGradient(command.seed, rank, command.length);
        const ms: number[] = [];
        let out = grad;
        for (let i = 0; i < (command.reps ?? 1); i++) {
          const t0 = performance.now();
          out = await reducer.allReduceMean(grad, command.step + i);
          ms.push(performance.now() - t0);
        }
        const sha256 = createHash('sha256')
          .update(new Uint8Array(out.buffer, out.byteOffset, out.byteLength))
          .digest('hex');
        let sum = 0;
        for (let i = 0; i < out.length; i++) sum += out[i]!;
        reply({ ok: true, sha256, head: Array.from(out.subarray(0, 4)), sum, ms });
      }
    } catch (err) {
      reply({ ok: false, error: (err as Error).message });
    }
  }
  reducer.close();
  await server.close();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
