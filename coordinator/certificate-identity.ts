import type { PeerCertificate } from 'node:tls';

/**
 * The identities a client certificate proves under mutual TLS: its subject's common name and its DNS
 * subject alternative names. A worker may use a worker id only when it is one of them, so a stolen
 * worker id is useless without that worker's private key.
 */
export function certificateNames(cert: PeerCertificate | undefined): string[] {
  if (cert === undefined || cert === null) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') names.push(cn);
  else if (Array.isArray(cn)) names.push(...(cn as string[]));
  for (const entry of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+?)\s*$/.exec(entry);
    if (m) names.push(m[1]!);
  }
  return names;
}
