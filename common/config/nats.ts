import { int, section, strOrNull, type SectionValue } from './field.js';

export const NATS = section('NATS JetStream transport of the bank: each worker publishes its keys to its own subject and keeps a replica of all.', {
  url: strOrNull({
    default: null,
    doc: 'NATS server(s) carrying the bank (nats://host:4222, comma-separated for a cluster); needs JetStream. null: the bank travels in-process or around the worker ring.',
    flag: { name: 'nats', arg: 'URL' },
  }),
  user: strOrNull({ default: null, doc: 'NATS user, with nats.password; null reads NATS_USER from the environment.' }),
  password: strOrNull({ default: null, doc: 'Password of nats.user; null reads NATS_PASSWORD from the environment.' }),
  token: strOrNull({ default: null, doc: 'NATS authentication token; null reads NATS_TOKEN from the environment.' }),
  tls_ca: strOrNull({ default: null, doc: "PEM CA bundle of the NATS server's certificate: connect with TLS; null reads NATS_TLS_CA." }),
  tls_cert: strOrNull({ default: null, doc: 'PEM client certificate for a NATS server that verifies clients; null reads NATS_TLS_CERT.' }),
  tls_key: strOrNull({ default: null, doc: 'PEM private key of nats.tls_cert; null reads NATS_TLS_KEY.' }),
  timeout_ms: int({
    ge: 100,
    default: 30000,
    doc: "How long NATS may stay unreachable, or a peer's keys missing, before the worker stops with an error (the last checkpoint stays intact), ms.",
  }),
});

/**
 * The NATS server that carries the bank's keys between workers (`nats:`; docs/architecture.md §4).
 * Credentials and TLS files left null are read from the environment, so that secrets need not be in a file.
 */
export type NatsConfig = SectionValue<typeof NATS>;
