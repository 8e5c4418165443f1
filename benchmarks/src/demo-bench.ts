/**
 * `pnpm run bench:demo [-- options]`: steps/s of every training phase of the `shapes` recipe
 * (`qf demo`: image encoder, LM, stage 1 with ITC + ITM + ITG, stage 2 with the LM loss and the kept
 * stage-1 objectives) at the default model sizes, and the time the default recipe's step counts
 * would take at those speeds. See README.md ("Demo recipe").
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  DEFAULT_OPTIONS,
  DEMO_BACKENDS,
  type DemoBackendName,
  type DemoReporter,
  runShapesDemo,
} from '@qf/demo';
import { benchArgs, runScript } from './cli-args.js';
import { machineInfo } from './machine.js';
import { writeResultFiles } from './report.js';

const DEFAULT_OUT = fileURLToPath(new URL('../results', import.meta.url));
const PHASES = ['encoder', 'lm', 'stage1', 'stage2'] as const;
type Phase = (typeof PHASES)[number];

const USAGE = `Usage: pnpm run bench:demo [-- options]

Steps/s of each training phase of the shapes recipe (qf demo) at its default sizes.

Options:
  --quick             20 steps per phase (CI smoke; default: 100 per phase)
  --steps <n>         steps per phase
  --backend <name>    ${DEMO_BACKENDS.join(' | ')} (repeatable; default: tfjs-wasm, the recipe's default)
  --out <dir>         results directory (default benchmarks/results)
  -h, --help          this text
`;

interface Options {
  readonly quick: boolean;
  readonly steps: number;
  readonly backends: DemoBackendName[];
  readonly out?: string | undefined;
  readonly help?: boolean;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean', default: false },
      steps: { type: 'string' },
      backend: { type: 'string', multiple: true },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const quick = values.quick ?? false;
  const steps = values.steps === undefined ? (quick ? 20 : 100) : Number(values.steps);
  if (!Number.isInteger(steps) || steps < WARMUP + 5)
    throw new Error(`--steps must be an integer >= ${WARMUP + 5}, got ${values.steps}`);
  const backends = (values.backend ?? ['tfjs-wasm']) as DemoBackendName[];
  for (const b of backends)
    if (!DEMO_BACKENDS.includes(b))
      throw new Error(`--backend must be one of ${DEMO_BACKENDS.join(', ')}, got ${b}`);
  return { quick, steps, backends, out: values.out, help: values.help ?? false };
}

/** Steps of each phase left out of the timing (kernel set-up, worker start, first allocations). */
const WARMUP = 5;

/** Step-end times of each training phase, from the recipe's progress reports. */
function stepClock(): { reporter: DemoReporter; rate: (phase: Phase) => number } {
  const times = new Map<string, number[]>();
  const reporter: DemoReporter = {
    phase: (name) => {
      const t: number[] = [];
      times.set(name, t);
      return { name, step: () => t.push(performance.now()), end: () => undefined };
    },
    info: () => undefined,
  };
  // Phase names as the recipe reports them ("image encoder (2 threads)", "stage 1 (ITC+ITM+ITG)").
  const prefix: Record<Phase, string> = {
    encoder: 'image encoder',
    lm: 'language model',
    stage1: 'stage 1',
    stage2: 'stage 2',
  };
  const rate = (phase: Phase) => {
    const t = [...times].find(([name]) => name.startsWith(prefix[phase]))?.[1] ?? [];
    const timed = t.length - 1 - WARMUP;
    if (timed < 1) throw new Error(`${phase}: too few steps to time (${t.length})`);
    return (timed * 1000) / ((t.at(-1) as number) - (t[WARMUP] as number));
  };
  return { reporter, rate };
}

interface DemoBenchResult {
  readonly backend: string;
  readonly steps: number;
  /** Steps/s of each phase after its first {@link WARMUP} steps. */
  readonly stepsPerSecond: Record<Phase, number>;
  /** Seconds the default recipe's steps of each phase take at these speeds. */
  readonly projectedSeconds: Record<Phase | 'total', number>;
}

async function measure(backend: DemoBackendName, steps: number): Promise<DemoBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'qf-demo-bench-'));
  try {
    const phase = { steps };
    const clock = stepClock();
    const r = await runShapesDemo(
      {
        backend,
        out: join(dir, 'out'),
        // Enough rows for every batch; the data size does not change the step time.
        trainSize: 2000,
        validationSize: 32,
        testSize: 100,
        samples: 0,
        encoder: phase,
        lm: phase,
        stage1: phase,
        stage2: phase,
      },
      clock.reporter,
    );
    const stepsPerSecond = {
      encoder: clock.rate('encoder'),
      lm: clock.rate('lm'),
      stage1: clock.rate('stage1'),
      stage2: clock.rate('stage2'),
    };
    const projected = Object.fromEntries(
      PHASES.map((p) => [p, DEFAULT_OPTIONS[p].steps / stepsPerSecond[p]]),
    ) as Record<Phase, number>;
    const total = PHASES.reduce((s, p) => s + projected[p], 0);
    return { backend: r.backend, steps, stepsPerSecond, projectedSeconds: { ...projected, total } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function markdown(report: {
  date: string;
  mode: string;
  args: string[];
  results: DemoBenchResult[];
}): string {
  const m = machineInfo();
  const d = DEFAULT_OPTIONS;
  const rows = report.results.map(
    (r) =>
      `| ${r.backend} | ${r.steps} | ${PHASES.map((p) => r.stepsPerSecond[p].toFixed(2)).join(' | ')} | ${r.projectedSeconds.total.toFixed(0)} |`,
  );
  return [
    `# Demo recipe training speed (${report.mode})`,
    '',
    `- Date: ${report.date}; arguments: \`${report.args.join(' ') || '(none)'}\``,
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${m.totalMemoryGiB} GiB, ${m.platform}; load ${m.loadAverage.join(' / ')} (1/5/15 min, at the start); Node ${m.node}`,
    `- Phases at the default sizes and batches: image encoder (batch ${d.encoder.batch}), LM (batch ${d.lm.batch}), stage 1 ITC + ITM + ITG (batch ${d.stage1.batch}), stage 2 LM loss (batch ${d.stage2.batch}) with ITC + ITM kept on ${d.stage2Keep.batch} pairs; ${d.workers} threads; steps/s after each phase's first ${WARMUP} steps`,
    `- "default recipe s": the training seconds of the default step counts (${PHASES.map((p) => `${p} ${d[p].steps}`).join(', ')}) at the measured speeds (no data, features or evaluation)`,
    '',
    '| backend | steps/phase | encoder steps/s | LM steps/s | stage 1 steps/s | stage 2 steps/s | default recipe s |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
}

async function main(): Promise<number> {
  const parsed = benchArgs(parseOptions, USAGE);
  if (!parsed.run) return parsed.exitCode;
  const { options: o, args } = parsed;
  const date = new Date().toISOString();
  const machine = machineInfo();
  const results: DemoBenchResult[] = [];
  for (const b of o.backends) {
    process.stderr.write(`${b}: ${o.steps} steps per phase\n`);
    results.push(await measure(b, o.steps));
  }
  const report = {
    date,
    mode: o.quick ? 'quick' : 'full',
    args,
    machine,
    loadAverageEnd: loadavg(),
    defaults: DEFAULT_OPTIONS,
    results,
  };
  const md = markdown(report);
  const dir = o.out ? resolve(process.env['INIT_CWD'] ?? process.cwd(), o.out) : DEFAULT_OUT;
  const files = await writeResultFiles(dir, 'demo-', date, report, md);
  process.stdout.write(`\n${md}`);
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  return 0;
}

runScript(main);
