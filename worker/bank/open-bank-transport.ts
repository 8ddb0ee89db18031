import type { Config } from '../../common/config/mod.js';
import { InProcessBankLog, streamMessageLimit } from './bank-stream.js';
import { NatsBankStream } from './nats-bank-stream.js';
import { StreamBankTransport } from './stream-bank-transport.js';

/** Who opens the bank: the job and run its messages belong to, and the NATS client name. */
export interface BankIdentity {
  job: string;
  runId: string;
  clientName: string;
}

/**
 * The bank transport `config` asks for: NATS JetStream when `nats.url` is set, otherwise the
 * embedded in-process log (a single-process run). Both are the same {@link StreamBankTransport}.
 */
export async function openBankTransport(config: Config, dim: number, id: BankIdentity): Promise<StreamBankTransport> {
  const limit = streamMessageLimit(config.bank.size, config.train.batch, config.bank.staleness);
  const stream = config.nats.url === null ? new InProcessBankLog(limit).handle() : await NatsBankStream.open(config.nats, id.job, limit, id.clientName);
  return StreamBankTransport.open(stream, {
    runId: id.runId,
    dim,
    capacity: config.bank.size,
    staleness: config.bank.staleness,
    timeoutMs: config.nats.timeout_ms,
  });
}
