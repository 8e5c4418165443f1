import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { USAGE, parseOptions } from './options.js';
import { createProgress } from './progress.js';
import { renderMarkdown, writeReport } from './report.js';
import { runBenchmarks } from './run.js';
import { benchArgs, runScript } from './cli-args.js';

/** benchmarks/results, whatever the working directory. */
const DEFAULT_OUT = fileURLToPath(new URL('../results', import.meta.url));

async function main(): Promise<number> {
  const parsed = benchArgs(parseOptions, USAGE);
  if (!parsed.run) return parsed.exitCode;
  const { options, args } = parsed;
  const report = await runBenchmarks(options, createProgress(), args);
  // pnpm runs the script in benchmarks/; INIT_CWD is where pnpm was invoked.
  const outDir = options.outDir
    ? resolve(process.env['INIT_CWD'] ?? process.cwd(), options.outDir)
    : DEFAULT_OUT;
  const files = await writeReport(report, outDir);
  process.stdout.write(`\n${renderMarkdown(report)}\n`);
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  if (report.leaked) {
    process.stderr.write('error: tfjs tensors leaked (numTensors after != before); see the table\n');
    return 1;
  }
  return 0;
}

runScript(main);
