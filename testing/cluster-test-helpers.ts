// Shared by the multi-process tests of this folder: small jobs, CLI processes, their exits and addresses.
import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { defaultConfig, type Config } from '../common/config/mod.js';

/** The CLI launcher of this checkout. */
export const BIN = new URL('../../bin/infobound.js', import.meta.url).pathname;

/** A click-log job small enough for many steps a second: tiny towers and tables, every step logged, no evaluation. */
export function smallJob(data: string, runDir: string, train: Partial<Config['train']>, bankSize = 200): Config {
  const c = defaultConfig();
  Object.assign(c, { data, run_dir: runDir });
  Object.assign(c.train, { batch: 16, log_every: 1, ...train });
  Object.assign(c.bank, { size: bankSize });
  Object.assign(c.clicklog, { hash_buckets: 1 << 12, embedding_dim: 16, hidden_dim: 32, output_dim: 16 });
  Object.assign(c.eval, { enabled: false });
  return c;
}

/** Writes a config as JSON (which is YAML) and returns its path. */
export function writeConfig(dir: string, name: string, config: Config): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** `infobound ARGS` as a child process with piped output, the join token in its environment. */
export function startCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, INFOBOUND_TOKEN: 'tok' } });
}

/** Resolves with the exit code once the process has exited. */
export function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve(p.exitCode) : p.on('exit', (code) => resolve(code))));
}

/** The address a coordinator process announces on stderr. */
export function listeningAddress(coordinator: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let err = '';
    coordinator.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (\S+);/.exec(err);
      if (m) resolve(m[1]!);
    });
  });
}

/** A loopback port that was free a moment ago (for a coordinator that must come back on it). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * A coordinator process (`coordinatorArgs` added to its flags) and `n` worker processes w0…w(n−1) for
 * the job of `cfg`, all killed at the test's end; `log()` is the coordinator's stderr so far.
 */
export async function startJob(
  t: TestContext,
  cfg: string,
  n: number,
  coordinatorArgs: string[],
): Promise<{ coordinator: ChildProcess; workers: ChildProcess[]; log: () => string }> {
  const coordinator = startCli(['coordinator', '--config', cfg, '--workers', String(n), '--json', ...coordinatorArgs]);
  t.after(() => coordinator.kill('SIGKILL'));
  let stderr = '';
  coordinator.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const address = await listeningAddress(coordinator);
  const workers = Array.from({ length: n }, (_, i) => startCli(['worker', '--coordinator', address, '--config', cfg, '--worker-id', `w${i}`]));
  t.after(() => workers.forEach((w) => w.kill('SIGKILL')));
  return { coordinator, workers, log: () => stderr };
}
