import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FixtureCommand, FixtureReply } from './ring-fixture.js';

/** The fixture script (compiled beside this file). */
const FIXTURE = fileURLToPath(new URL('./ring-fixture.js', import.meta.url));

/** Options of RingFixtureClient.start. */
export interface RingFixtureOptions {
  /** Flags for each fixture process (--timeout-ms, --chunk-bytes, --window-bytes). */
  args?: string[];
  /** Deadline of each reply, in ms; default 30000. */
  replyTimeoutMs?: number;
}

/** One fixture process and its pending replies. */
interface Worker {
  child: ChildProcess;
  lines: string[];
  waiter?: (line: string | undefined) => void;
  exited: boolean;
}

/**
 * The parent's handle on a ring of fixture processes (ring-fixture.ts), one per rank, talking JSON
 * lines over their stdin/stdout; their Peer addresses come from their first line.
 */
export class RingFixtureClient {
  private constructor(
    private readonly workers: Worker[],
    /** Peer address of each rank. */
    readonly peers: string[],
    private readonly replyTimeoutMs: number,
  ) {}

  /** Spawns `world` fixture processes and reads their addresses. */
  static async start(world: number, { args = [], replyTimeoutMs = 30_000 }: RingFixtureOptions = {}): Promise<RingFixtureClient> {
    const workers = Array.from({ length: world }, (): Worker => {
      const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
      const w: Worker = { child, lines: [], exited: false };
      // Writing to a process that was just killed fails with EPIPE; its 'exit' is what reports it.
      child.stdin!.on('error', () => {});
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (w.waiter) {
          const wake = w.waiter;
          w.waiter = undefined;
          wake(line);
        } else w.lines.push(line);
      });
      child.on('exit', () => {
        w.exited = true;
        w.waiter?.(undefined);
        w.waiter = undefined;
      });
      return w;
    });
    const ring = new RingFixtureClient(workers, [], replyTimeoutMs);
    try {
      const hellos = await Promise.all(workers.map((_, r) => ring.nextLine(r)));
      ring.peers.push(...hellos.map((h) => (JSON.parse(h) as FixtureReply).address!));
    } catch (err) {
      ring.killAll();
      throw err;
    }
    return ring;
  }

  /** Sends a command to rank `rank` and waits for its reply. */
  async request(rank: number, command: FixtureCommand): Promise<FixtureReply> {
    this.workers[rank]!.child.stdin!.write(`${JSON.stringify(command)}\n`);
    return JSON.parse(await this.nextLine(rank)) as FixtureReply;
  }

  /** Puts every rank in generation `generation` of a ring of all of them. */
  async setTopology(generation: number): Promise<void> {
    const world = this.peers.length;
    await Promise.all(this.peers.map((_, rank) => this.request(rank, { cmd: 'topology', generation, rank, world, peers: this.peers })));
  }

  /** Kills rank `rank`'s process at once (SIGKILL: its sockets close without a goodbye). */
  kill(rank: number): void {
    this.workers[rank]!.child.kill('SIGKILL');
  }

  /** Asks every process to exit; kills those still running after 5 s. */
  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        if (w.exited) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            w.child.kill('SIGKILL');
            resolve();
          }, 5000);
          w.child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          w.child.stdin!.end(`${JSON.stringify({ cmd: 'exit' })}\n`);
        });
      }),
    );
  }

  private killAll(): void {
    for (const w of this.workers) if (!w.exited) w.child.kill('SIGKILL');
  }

  private nextLine(rank: number): Promise<string> {
    const w = this.workers[rank]!;
    const queued = w.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (w.exited) return Promise.reject(new Error(`fixture rank ${rank} has exited`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        w.waiter = undefined;
        reject(new Error(`fixture rank ${rank} sent no reply within ${this.replyTimeoutMs} ms`));
      }, this.replyTimeoutMs);
      w.waiter = (line) => {
        clearTimeout(timer);
        if (line === undefined) reject(new Error(`fixture rank ${rank} exited before replying`));
        else resolve(line);
      };
    });
  }
}
