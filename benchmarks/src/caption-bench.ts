/**
 * `pnpm run bench:caption [-- options]`: caption latency and generated tokens/s of a whole BLIP-2
 * (image -> text) on tfjs-cpu and on ONNX files run by onnxruntime-node. See README.md.
 */
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type CaptionResult, measureCaption } from './caption/measure.js';
import { CAPTION_BACKENDS, type CaptionBackend, openPipeline, removeExports } from './caption/pipeline.js';
import { type CaptionReport, renderCaptionMarkdown, writeCaptionReport } from './caption/report.js';
import { CAPTION_WORKLOADS, getCaptionWorkload, modelSize, workloadConfig } from './caption/workloads.js';
import { machineInfo } from './machine.js';
import { benchArgs, runScript } from './cli-args.js';

const DEFAULT_OUT = fileURLToPath(new URL('../results', import.meta.url));

const MODES = {
  full: { workloads: ['tiny-opt', 'blip2-vitg-opt125m'], runs: { 'tiny-opt': 10, 'blip2-vitg-opt125m': 3 } },
  quick: { workloads: ['tiny-opt'], runs: { 'tiny-opt': 5, 'blip2-vitg-opt125m': 1 } },
} as const;

export const CAPTION_USAGE = `Usage: pnpm run bench:caption [-- options]   (in benchmarks/; pnpm bench runs it after the Q-Former benchmark)

Caption latency (preprocess, vision tower, Q-Former + projector, LM generation of N tokens) and
generated tokens/s, batch 1, on tfjs-cpu and on exported ONNX files (onnxruntime-node).

Options:
  --quick               CI mode: the tiny workload only, 5 runs
  --workloads LIST      ${Object.keys(CAPTION_WORKLOADS).join(', ')} (default: all; quick: tiny-opt)
  --backends LIST       ${CAPTION_BACKENDS.join(', ')} (default: all)
  --runs N              timed captions per combination (default: tiny-opt 10, blip2-vitg-opt125m 3; quick 5)
  --warmup N            untimed captions first (default 1; the first opens the ONNX sessions)
  --threads N           ONNX Runtime intra-op threads (default 2)
  --out DIR             results directory (default: benchmarks/results)
  -h, --help            this text
`;

function int(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

/** Parses the options (a bare `--` is ignored). */
export function parseCaptionOptions(argv: readonly string[]) {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== '--'),
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean', default: false },
      workloads: { type: 'string' },
      backends: { type: 'string' },
      runs: { type: 'string' },
      warmup: { type: 'string' },
      threads: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const mode = values.quick ? MODES.quick : MODES.full;
  const list = (v: string | undefined) =>
    v
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const workloads = list(values.workloads) ?? [...mode.workloads];
  for (const w of workloads) getCaptionWorkload(w);
  const backends = (list(values.backends) ?? [...CAPTION_BACKENDS]) as CaptionBackend[];
  for (const b of backends)
    if (!(CAPTION_BACKENDS as readonly string[]).includes(b))
      throw new Error(`--backends: unknown backend "${b}" (known: ${CAPTION_BACKENDS.join(', ')})`);
  const runs = int('--runs', values.runs, 1);
  return {
    quick: values.quick ?? false,
    workloads,
    backends,
    runsFor: (w: string) => runs ?? mode.runs[w as keyof typeof mode.runs] ?? 3,
    warmup: int('--warmup', values.warmup, 1) ?? 1,
    threads: int('--threads', values.threads, 1) ?? 2,
    out: values.out,
    help: values.help ?? false,
  };
}

/** Every (workload, backend) combination, in order; results and skips are appended. */
async function runAll(
  o: ReturnType<typeof parseCaptionOptions>,
  log: (line: string) => void,
  results: CaptionResult[],
  skipped: CaptionReport['skipped'][number][],
): Promise<void> {
  for (const name of o.workloads) {
    const w = getCaptionWorkload(name);
    for (const backend of o.backends) {
      const reason = w.skip?.[backend];
      if (reason) {
        skipped.push({ backend, workload: name, reason });
        log(`${backend} ${name}: skipped (${reason})`);
        continue;
      }
      log(`${backend} ${name}: setting up...`);
      const p = await openPipeline(w, backend, o.threads);
      try {
        log(`${backend} ${name}: ready in ${p.setupSeconds.toFixed(1)} s`);
        const r = await measureCaption(p, w, {
          runs: o.runsFor(name),
          warmup: o.warmup,
          onRun: (phase, i, ms) => log(`  ${phase} ${i}: ${ms.toFixed(1)} ms`),
        });
        results.push(r);
        log(
          `${backend} ${name}: caption median ${r.medianMs.toFixed(1)} ms, ${r.tokensPerSec.toFixed(1)} generated tokens/s`,
        );
      } finally {
        await p.dispose();
      }
    }
  }
}

/** Runs every (workload, backend) combination the options name. */
export async function runCaptionBench(
  o: ReturnType<typeof parseCaptionOptions>,
  args: readonly string[],
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<CaptionReport> {
  const date = new Date().toISOString();
  const machine = machineInfo();
  const t0 = performance.now();
  const results: CaptionResult[] = [];
  const skipped: CaptionReport['skipped'][number][] = [];
  try {
    await runAll(o, log, results, skipped);
  } finally {
    await removeExports();
  }
  const require = createRequire(import.meta.url);
  const ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;
  return {
    schema: 'qformer-ts-caption-bench/1',
    date,
    mode: o.quick ? 'quick' : 'full',
    args,
    machine,
    onnxRuntime: ortVersion,
    workloads: o.workloads.map((n) => {
      const w = getCaptionWorkload(n);
      const size = modelSize(workloadConfig(w));
      return {
        name: n,
        description: w.description,
        params: size.params,
        visionParams: size.vision,
        newTokens: w.newTokens,
        onnxWeights: w.onnxWeights,
      };
    }),
    results,
    skipped,
    totalSeconds: (performance.now() - t0) / 1000,
    loadAverageEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    leaked: results.some((r) => r.liveAfter !== r.liveBefore),
  };
}

async function main(): Promise<number> {
  const parsed = benchArgs(parseCaptionOptions, CAPTION_USAGE);
  if (!parsed.run) return parsed.exitCode;
  const { options: o, args } = parsed;
  const report = await runCaptionBench(o, args);
  const outDir = o.out ? resolve(process.env['INIT_CWD'] ?? process.cwd(), o.out) : DEFAULT_OUT;
  const files = await writeCaptionReport(report, outDir);
  process.stdout.write(`\n${renderCaptionMarkdown(report)}\n`);
  process.stderr.write(`wrote ${files.join(', ')}\n`);
  if (report.leaked) {
    process.stderr.write('error: backend resources leaked (live after != before); see the table\n');
    return 1;
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  runScript(main);
}
