import { readFileSync } from 'node:fs';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { NatsConfig } from '../../common/config/mod.js';
import { UserError } from '../../common/user-error.js';
import type { BankStream, StoredBankMessage } from './bank-stream.js';

/** Where a job's bank lives in JetStream (docs/architecture.md §4): stream IB_BANK_<job>, subject ib.<job>.bank.<rank>. */
export function bankStreamNames(job: string): { stream: string; subjectPrefix: string } {
  // Stream names and subject tokens must not hold '.', '*', '>' or whitespace.
  const token = job.replace(/[^A-Za-z0-9_-]/g, '_');
  return { stream: `IB_BANK_${token}`, subjectPrefix: `ib.${token}.bank` };
}

/**
 * How a worker connects to NATS: the config's credentials and TLS files, else the environment's
 * (NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY); TLS when a CA is given.
 */
export function natsConnectionOptions(c: NatsConfig, name: string, env: NodeJS.ProcessEnv = process.env): NodeConnectionOptions {
  if (c.url === null) throw new UserError('nats.url is not set');
  const read = (field: string, path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new UserError(`nats.${field} ${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const user = c.user ?? env.NATS_USER;
  const pass = c.password ?? env.NATS_PASSWORD;
  const token = c.token ?? env.NATS_TOKEN;
  const ca = c.tls_ca ?? env.NATS_TLS_CA;
  const cert = c.tls_cert ?? env.NATS_TLS_CERT;
  const key = c.tls_key ?? env.NATS_TLS_KEY;
  return {
    servers: c.url.split(',').map((s) => s.trim()),
    name,
    ...(user !== undefined ? { user } : {}),
    ...(pass !== undefined ? { pass } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(ca !== undefined
      ? {
          tls: {
            ca: read('tls_ca', ca),
            ...(cert !== undefined ? { cert: read('tls_cert', cert) } : {}),
            ...(key !== undefined ? { key: read('tls_key', key) } : {}),
          },
        }
      : {}),
    // Keep reconnecting through an outage; the transport's own timeout decides when to give up.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: c.timeout_ms,
  };
}

/** The bank stream on a NATS JetStream server. */
export class NatsBankStream implements BankStream {
  private consuming: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: { stream: string; subjectPrefix: string },
    private readonly publishTimeoutMs: number,
  ) {}

  /**
   * Connects and makes sure the job's stream exists with limits of `maxMessagesPerSubject` messages
   * per producer's subject (oldest discarded). Unreachable servers and refused credentials are one-line {@link UserError}s.
   */
  static async open(config: NatsConfig, job: string, maxMessagesPerSubject: number, clientName: string): Promise<NatsBankStream> {
    const options = natsConnectionOptions(config, clientName);
    let nc: NatsConnection;
    const connecting = connect(options);
    let timer: NodeJS.Timeout | undefined;
    try {
      // Bounded here: with reconnects unlimited, a server that takes the TCP connection but never
      // answers would hold the first connect open.
      const deadline = new Promise<never>(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(new Error(`no connection within ${config.timeout_ms / 1000} s (refused credentials, or no server)`)),
            config.timeout_ms,
          )),
      );
      nc = await Promise.race([connecting, deadline]);
    } catch (err) {
      connecting.then((late) => late.close()).catch(() => undefined);
      throw new UserError(`NATS ${config.url}: cannot connect: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    const names = bankStreamNames(job);
    try {
      const jsm = await jetstreamManager(nc);
      const stream = {
        name: names.stream,
        subjects: [`${names.subjectPrefix}.*`],
        // Limits per subject: a flood of one subject (forged or not) can evict only its own
        // messages, never another producer's keys. Who may publish at all is NATS authorization's.
        max_msgs_per_subject: maxMessagesPerSubject,
        max_msgs: -1,
        discard: 'old' as const,
        retention: 'limits' as const,
        storage: 'file' as const,
        // Retries of a publish within two minutes are stored once.
        duplicate_window: 120e9,
      };
      try {
        await jsm.streams.add(stream);
      } catch {
        // Exists, perhaps with other limits (another bank size): take this job's.
        await jsm.streams.update(names.stream, stream);
      }
      return new NatsBankStream(nc, jetstream(nc), jsm, names, config.timeout_ms);
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw new UserError(`NATS ${config.url}: cannot set up stream ${names.stream} (is JetStream enabled?): ${(err as Error).message}`);
    }
  }

  async publish(producer: number, data: Uint8Array, id: string): Promise<number> {
    const ack = await this.js.publish(`${this.names.subjectPrefix}.${producer}`, data, { msgID: id, timeout: Math.min(this.publishTimeoutMs, 5000) });
    return ack.seq;
  }

  async subscribe(deliver: (m: StoredBankMessage) => void): Promise<void> {
    // An ordered consumer: delivered in seq order from the first message, and recreated at the next
    // expected seq after a gap or a server restart.
    const consumer = await this.js.consumers.get(this.names.stream, { deliver_policy: 'all' });
    // Short pulls with frequent heartbeats: after a server restart the consumer notices within a few
    // seconds and recreates itself, where the defaults (30 s pulls) would outlast the bank's timeout.
    const messages = await consumer.consume({ expires: 4000, idle_heartbeat: 1000 });
    this.consuming = (async () => {
      for await (const m of messages) {
        if (this.closed) break;
        deliver(this.stored(m));
      }
    })();
  }

  /** A received message as the bank reads it: the producer is its subject's last token. */
  private stored(m: { seq: number; subject: string; data: Uint8Array }): StoredBankMessage {
    return { seq: m.seq, producer: Number(m.subject.slice(this.names.subjectPrefix.length + 1)), data: m.data };
  }

  async replay(deliver: (m: StoredBankMessage) => void): Promise<void> {
    const last = await this.lastSeq();
    if (last === 0) return;
    const consumer = await this.js.consumers.get(this.names.stream, { deliver_policy: 'all' });
    const messages = await consumer.consume({ expires: 4000, idle_heartbeat: 1000 });
    try {
      for await (const m of messages) {
        deliver(this.stored(m));
        if (m.seq >= last) break;
      }
    } finally {
      await messages.close();
    }
  }

  async lastSeq(): Promise<number> {
    return (await this.jsm.streams.info(this.names.stream)).state.last_seq;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.nc.close().catch(() => undefined);
    await this.consuming?.catch(() => undefined);
  }
}
