import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** How a test's nats-server runs: extra flags (authentication, for instance), or a config file. */
export interface NatsTestServerOptions {
  args?: string[];
  /**
   * The server's config file (a deployment's, say), given the directory its JetStream store must use;
   * the address and port still come from the test. Without it: JetStream on, no authentication.
   */
  config?: (storeDir: string) => string;
  /** Environment of the server (variables its config reads). */
  env?: Record<string, string>;
}

/**
 * A real nats-server (Debian's package) with JetStream, on 127.0.0.1 and a free port, storing in a
 * temporary directory: one per test, as nats.js's own tests do. It can be killed and started again on
 * the same port and store, to test outages.
 */
export class NatsTestServer {
  private child: ChildProcess | undefined;
  /** The client port, fixed by the first start so that a restart listens where clients reconnect. */
  port = -1;

  private readonly args: string[];

  private constructor(
    readonly storeDir: string,
    private readonly options: NatsTestServerOptions,
  ) {
    if (options.config === undefined) this.args = ['-js', '-sd', storeDir, ...(options.args ?? [])];
    else {
      const path = join(storeDir, 'nats.conf');
      writeFileSync(path, options.config(join(storeDir, 'store')));
      this.args = ['-c', path, ...(options.args ?? [])];
    }
  }

  /** Starts a server; the test's end stops it and removes its store. */
  static async start(t: TestContext, options: NatsTestServerOptions = {}): Promise<NatsTestServer> {
    const server = new NatsTestServer(mkdtempSync(join(tmpdir(), 'infobound-nats-')), options);
    t.after(() => server.stop());
    server.port = await server.launch(-1);
    return server;
  }

  /** Starts a server outside a test (a load test); the caller stops it. */
  static async startDetached(options: NatsTestServerOptions = {}): Promise<NatsTestServer> {
    const server = new NatsTestServer(mkdtempSync(join(tmpdir(), 'infobound-nats-')), options);
    server.port = await server.launch(-1);
    return server;
  }

  /** Kills the server and removes its store. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** SIGKILLs the server (no clean shutdown) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts the server again on the same port and store. */
  async restart(): Promise<void> {
    await this.launch(this.port);
  }

  /** Spawns nats-server and resolves with its client port once it accepts connections (bounded wait). */
  private launch(port: number): Promise<number> {
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), ...this.args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(this.options.env !== undefined ? { env: { ...process.env, ...this.options.env } } : {}),
    });
    this.child = child;
    return new Promise((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => fail(new Error(`nats-server did not become ready within 15 s:\n${log}`)), 15_000);
      const onExit = (code: number | null) => fail(new Error(`nats-server exited with ${code}:\n${log}`));
      const onData = (chunk: string) => {
        log += chunk;
        const m = /Listening for client connections on [^\s]*:(\d+)/.exec(log);
        if (m === null || !/Server is ready/.test(log)) return;
        // Only our own listeners go: a later kill() waits on 'exit' too.
        clearTimeout(timer);
        child.off('exit', onExit);
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve(Number(m[1]));
      };
      const fail = (err: Error) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        child.kill('SIGKILL');
        reject(err);
      };
      child.once('error', (err) => fail(new Error(`cannot start nats-server (apt-get install nats-server): ${err.message}`)));
      child.once('exit', onExit);
      child.stderr!.setEncoding('utf8').on('data', onData);
    });
  }
}
