import { bool, section, strOrNull, type SectionValue } from './field.js';

export const TLS = section('TLS of the coordinator and worker-to-worker gRPC channels (multi-worker runs).', {
  ca: strOrNull({
    default: null,
    doc: 'PEM CA bundle that signed the job certificates; with cert and key set, every gRPC channel of a multi-worker job uses TLS. null: plaintext gRPC (use a join token and a private network).',
  }),
  cert: strOrNull({ default: null, doc: 'PEM certificate of this process, used as server and (mutual TLS) as client.' }),
  key: strOrNull({ default: null, doc: 'PEM private key of tls.cert.' }),
  mutual: bool({ default: true, doc: 'Servers require a client certificate signed by tls.ca (mutual TLS).' }),
});

/** TLS of every gRPC channel of a multi-worker job (`tls:`). */
export type TlsConfig = SectionValue<typeof TLS>;
