import { bool, oneOf, section, strOrNull, type SectionValue } from './field.js';

/** What a worker's client certificate must prove under mutual TLS. */
export const WORKER_IDENTITIES = ['certificate', 'ca'] as const;

export const TLS = section('TLS of the coordinator and worker-to-worker gRPC channels (multi-worker runs).', {
  ca: strOrNull({
    default: null,
    doc: 'PEM CA bundle that signed the job certificates; with cert and key set, every gRPC channel of a multi-worker job uses TLS. null: plaintext gRPC (use a join token and a private network).',
  }),
  cert: strOrNull({ default: null, doc: 'PEM certificate of this process, used as server and (mutual TLS) as client.' }),
  key: strOrNull({ default: null, doc: 'PEM private key of tls.cert.' }),
  mutual: bool({ default: true, doc: 'Servers require a client certificate signed by tls.ca (mutual TLS).' }),
  worker_identity: oneOf(WORKER_IDENTITIES, {
    default: 'certificate',
    doc: "Under mutual TLS, what a worker's certificate proves: certificate (its worker id must be the certificate's CN or one of its DNS names, so a stolen id is useless without the worker's key) or ca (any certificate of tls.ca may act as any worker: one certificate shared by the job).",
  }),
});

/** TLS of every gRPC channel of a multi-worker job (`tls:`). */
export type TlsConfig = SectionValue<typeof TLS>;
