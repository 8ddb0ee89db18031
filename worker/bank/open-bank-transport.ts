import type { Config } from '../../common/config/mod.js';
import { InProcessBankLog, streamMessageLimit } from './bank-stream.js';
import { NatsBankStream } from './nats-bank-stream.js';
import { StreamBankTransport } from './stream-bank-transport.js';

/** Who opens the bank: the job and run its messages belong to, the run's bank key, and the NATS client name. */
export interface BankIdentity {
  job: string;
  runId: string;
  /** Signs this worker's messages and verifies everyone's (Membership.bank_key; a single process makes its own). */
  bankKey: Uint8Array;
  clientName: string;
}

/** What the bank needs of the model: the keys' width and the item ids they may carry. */
export interface BankShape {
  dim: number;
  itemCount: number;
}

/**
 * The bank transport `config` asks for: NATS JetStream when `nats.url` is set, otherwise the
 * embedded in-process log (a single-process run). Both are the same {@link StreamBankTransport}.
 */
export async function openBankTransport(config: Config, shape: BankShape, id: BankIdentity): Promise<StreamBankTransport> {
  const limit = streamMessageLimit(config.bank.size, config.train.batch, config.bank.staleness);
  const stream = config.nats.url === null ? new InProcessBankLog(limit).handle() : await NatsBankStream.open(config.nats, id.job, limit, id.clientName);
  return StreamBankTransport.open(stream, {
    runId: id.runId,
    bankKey: id.bankKey,
    dim: shape.dim,
    itemCount: shape.itemCount,
    capacity: config.bank.size,
    staleness: config.bank.staleness,
    timeoutMs: config.nats.timeout_ms,
  });
}
