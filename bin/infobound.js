#!/usr/bin/env node
// Thin launcher: the CLI is TypeScript compiled to dist/ by `npm ci` (prepare) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// grpc-js names the TLS server by its address, and Node flags an IP address there (DEP0123) on every
// connection to a worker dialled by IP; it is noise for users, not something they can act on.
process.noDeprecation = true;

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('infobound: not built yet; run `npm ci` (or `npm run build`) in the repository root first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
