import { readFileSync } from 'node:fs';
import type { ConnectionOptions, TlsOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { TlsConfig } from './config/mod.js';
import { UserError } from './user-error.js';

/** The PEM files of a TLS config, read; null when TLS is off. A partial config is a user error. */
function pems(tls: TlsConfig): { ca: Buffer; cert: Buffer; key: Buffer } | null {
  const set = [tls.ca, tls.cert, tls.key].filter((p) => p !== null).length;
  if (set === 0) return null;
  if (set !== 3) throw new UserError('tls: set all of tls.ca, tls.cert and tls.key, or none of them');
  const read = (field: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UserError(`tls.${field} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
  };
  return { ca: read('ca', tls.ca!), cert: read('cert', tls.cert!), key: read('key', tls.key!) };
}

/** Credentials of a gRPC server (coordinator, a worker's Peer service): TLS, and client verification when mutual. */
export function serverCredentials(tls: TlsConfig): grpc.ServerCredentials {
  const p = pems(tls);
  if (p === null) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(p.ca, [{ private_key: p.key, cert_chain: p.cert }], tls.mutual);
}

/** Credentials of a gRPC client: verifies the server against the CA and presents this process's certificate. */
export function channelCredentials(tls: TlsConfig): grpc.ChannelCredentials {
  const p = pems(tls);
  if (p === null) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(p.ca, p.key, p.cert);
}

/** Node TLS options of a server beside the gRPC ones (the data plane's listener), or null when TLS is off. */
export function serverTlsOptions(tls: TlsConfig): TlsOptions | null {
  const p = pems(tls);
  if (p === null) return null;
  return { ca: p.ca, cert: p.cert, key: p.key, requestCert: tls.mutual, rejectUnauthorized: tls.mutual };
}

/** Node TLS options of a client beside the gRPC ones (a data-plane connection), or null when TLS is off. */
export function clientTlsOptions(tls: TlsConfig): ConnectionOptions | null {
  const p = pems(tls);
  if (p === null) return null;
  return { ca: p.ca, cert: p.cert, key: p.key };
}
