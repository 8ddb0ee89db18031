import * as grpc from '@grpc/grpc-js';
import { UserError } from '../common/user-error.js';
import { describeConfig } from '../common/config/mod.js';
import { coordinatorCommand } from './command-coordinator.js';
import { demoCommand } from './command-demo.js';
import { genClicklogCommand } from './command-gen-clicklog.js';
import { trainCommand } from './command-train.js';
import { workerCommand } from './command-worker.js';
import { benchMiCommand } from './command-bench-mi.js';
import { studyTemperatureCommand } from './command-study-temperature.js';
import { reportCommand } from './command-report.js';
import { exportCommand } from './command-export.js';
import { auditCommand } from './command-audit.js';
import { prepareCommand } from './command-prepare.js';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  train: { run: trainCommand, help: 'train an encoder and report its MI bounds' },
  'gen-clicklog': { run: genClicklogCommand, help: 'write a synthetic click log with known MI' },
  prepare: { run: prepareCommand, help: 'turn click logs into a prepared, sharded dataset (streaming, bounded memory)' },
  coordinator: { run: coordinatorCommand, help: 'serve a multi-worker job: membership, data plan, step commits' },
  worker: { run: workerCommand, help: 'join a coordinator and train the steps it assigns' },
  'bench-mi': { run: benchMiCommand, help: 'the correlated-Gaussian MI benchmark of every estimator (Poole et al. 2019)' },
  'study-temperature': { run: studyTemperatureCommand, help: 'how the temperature changes the tightness of the InfoNCE bound' },
  audit: { run: auditCommand, help: "check that a run's committed steps trained every example exactly once" },
  export: { run: exportCommand, help: 'turn a click-log checkpoint into ONNX towers, their featuriser spec and the site embeddings' },
  report: { run: reportCommand, help: 'one self-contained HTML page of plots for a run, study or benchmark directory' },
  demo: { run: demoCommand, help: 'generate a synthetic click log and train on it (what `npm start` runs)' },
  config: {
    run: async () => {
      process.stdout.write(describeConfig());
      return 0;
    },
    help: 'print every config field with its default and meaning (YAML)',
  },
};

const USAGE = `usage: infobound <command> [flags]   (infobound <command> --help for its flags)

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)} ${c.help}`)
  .join('\n')}
`;

/**
 * A reader that went away (`infobound train --json | head -1`) ends the command quietly, as SIGPIPE
 * ends a Unix tool, instead of an EPIPE stack trace. A local cluster's SIGTERM handler, when there is
 * one, takes its workers down first; checkpoints are written atomically, so the last one stands.
 */
function endOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM', 'SIGTERM');
    else process.exit(0);
  });
}

/** CLI entry: returns the exit code; a user's mistake is one line on stderr, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  endOnClosedStdout();
  // grpc-js logs its own view of failures (an address it cannot bind, a dropped stream) that our
  // messages already report in one line; GRPC_VERBOSITY=DEBUG (or INFO, ERROR) brings its log back.
  if (process.env.GRPC_VERBOSITY === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`infobound: unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(`infobound: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
