import { parseArgs } from 'node:util';
import { WORKLOADS } from './workloads.js';

/** The backends this benchmark knows. */
export const BACKENDS = ['tfjs-cpu', 'tfjs-wasm'] as const;
export type BackendId = (typeof BACKENDS)[number];

/** What to run and how long it may take. */
export interface BenchOptions {
  readonly quick: boolean;
  readonly backends: readonly BackendId[];
  readonly workloads: readonly string[];
  /** Batch sizes for every workload; unset: each workload's own list. */
  readonly batches?: readonly number[];
  readonly runs: number;
  readonly warmup: number;
  readonly outDir?: string;
  readonly wasmThreads?: number;
  /** Time caps on (default); `--no-caps` runs every combination with exactly `runs` runs. */
  readonly caps: boolean;
  /** Whole run, s: later combinations are skipped once it would be exceeded. */
  readonly totalBudgetS: number;
  /** Timed runs of one combination, s: runs are lowered to fit. */
  readonly comboBudgetS: number;
  /** A combination whose batch is estimated (from a smaller batch) to take longer than this, s, is skipped. */
  readonly maxBatchS: number;
  readonly help: boolean;
}

/** Defaults of the two modes. */
export const MODE_DEFAULTS = {
  full: {
    workloads: ['small', 'blip2-default'],
    runs: 10,
    totalBudgetS: 600,
    comboBudgetS: 90,
    maxBatchS: 60,
  },
  quick: { workloads: ['small'], runs: 5, totalBudgetS: 45, comboBudgetS: 6, maxBatchS: 10 },
} as const;

export const USAGE = `Usage: pnpm bench [-- options]   (from the repository root; or pnpm run bench in benchmarks/)

Measures the Q-Former forward (query path, random weights) per backend, workload and batch size.

Options:
  --quick                 CI mode: the small workload, few runs, under a minute on 2 cores
  --backends LIST         comma-separated: ${BACKENDS.join(', ')} (default: all)
  --workloads LIST        comma-separated: ${Object.keys(WORKLOADS).join(', ')}
                          (default: ${MODE_DEFAULTS.full.workloads.join(',')}; quick: ${MODE_DEFAULTS.quick.workloads.join(',')})
  --batches LIST          batch sizes for every workload (default: the workload's own, 1,8)
  --runs N                timed runs per combination (default ${MODE_DEFAULTS.full.runs}; quick ${MODE_DEFAULTS.quick.runs})
  --warmup N              untimed warm-up runs first (default 1)
  --out DIR               results directory, relative to where pnpm was run (default: benchmarks/results)
  --wasm-threads N        thread count asked of tfjs-wasm (Node builds run single-threaded)
  --budget S              cap on the whole run in seconds (default ${MODE_DEFAULTS.full.totalBudgetS}; quick ${MODE_DEFAULTS.quick.totalBudgetS})
  --no-caps               no skipping, no lowered runs: every combination gets --runs runs
  -h, --help              this text
`;

function positiveInt(flag: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
}

/** Parses command-line arguments (a bare `--`, as package managers pass it, is ignored). */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== '--'),
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean', default: false },
      backends: { type: 'string' },
      workloads: { type: 'string' },
      batches: { type: 'string' },
      runs: { type: 'string' },
      warmup: { type: 'string' },
      out: { type: 'string' },
      'wasm-threads': { type: 'string' },
      budget: { type: 'string' },
      'no-caps': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const mode = values.quick ? MODE_DEFAULTS.quick : MODE_DEFAULTS.full;

  const backends = list(values.backends) ?? [...BACKENDS];
  for (const b of backends) {
    if (!(BACKENDS as readonly string[]).includes(b))
      throw new Error(`--backends: unknown backend "${b}" (known: ${BACKENDS.join(', ')})`);
  }
  const workloads = list(values.workloads) ?? [...mode.workloads];
  for (const w of workloads) {
    if (!WORKLOADS[w])
      throw new Error(`--workloads: unknown workload "${w}" (known: ${Object.keys(WORKLOADS).join(', ')})`);
  }
  const batches = list(values.batches)?.map((b) => positiveInt('--batches', b) as number);
  const totalBudgetS = positiveInt('--budget', values.budget) ?? mode.totalBudgetS;
  const wasmThreads = positiveInt('--wasm-threads', values['wasm-threads']);
  return {
    quick: values.quick ?? false,
    backends: backends as BackendId[],
    workloads,
    ...(batches ? { batches } : {}),
    runs: positiveInt('--runs', values.runs) ?? mode.runs,
    warmup: positiveInt('--warmup', values.warmup, 0) ?? 1,
    ...(values.out !== undefined ? { outDir: values.out } : {}),
    ...(wasmThreads !== undefined ? { wasmThreads } : {}),
    caps: !values['no-caps'],
    totalBudgetS,
    comboBudgetS: mode.comboBudgetS,
    maxBatchS: mode.maxBatchS,
    help: values.help ?? false,
  };
}
