/**
 * ONNX backend benchmark: the BLIP-2 default Q-Former query path (12.75 GFLOP per image) at B=1 and
 * B=8 with a fixed thread count, float32 and int8 weights, through the backend (weights in memory or
 * in `tempFileStorage()`) and through an exported file; ITM re-ranking of 1 image x 128 texts (the
 * image shared vs repeated per text); session start-up from a saved optimized model vs a fresh
 * optimization; plus an ORT MatMul peak measured in the same run. Each measurement runs in its own
 * process (so peak RSS is its own). Prints JSON and Markdown tables.
 *
 *   pnpm --filter @qf/backends bench:onnx [--quick] [--threads 2] [--runs 12] [--texts 128]
 *     [--text-length 20] [--rerank-runs 3] [--no-rerank] [--json out.json]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MeasureRequest, MeasureResult } from './measure.js';
import { exportWorkload, gflopPerImage, workload } from './workload.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? (args[i + 1] as string) : dflt;
};
const quick = flag('quick');
const threads = Number(opt('threads', '2'));
const runs = Number(opt('runs', quick ? '4' : '12'));
const batches = opt('batches', '1,8').split(',').map(Number);
const jsonOut = opt('json', '');
const rerankTexts = Number(opt('texts', quick ? '16' : '128'));
const textLength = Number(opt('text-length', '20'));
const rerankRuns = Number(opt('rerank-runs', '3'));

function child(req: MeasureRequest): MeasureResult {
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, '--expose-gc', join(here, 'measure.ts'), JSON.stringify(req)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    },
  );
  return JSON.parse(out.trim().split('\n').pop() as string) as MeasureResult;
}

async function main(): Promise<void> {
  const loadAtStart = loadavg();
  const w = workload(quick);
  const base = { quick, threads, batches, runs };
  const peak = child({ kind: 'matmul', ...base, runs: Math.max(runs, 10) });
  const results: MeasureResult[] = [];
  const qf = (r: Partial<MeasureRequest>) => child({ kind: 'qformer', mode: 'backend', ...base, ...r });
  results.push(qf({ weights: 'float32' }));
  results.push(qf({ weights: 'float32', storage: true }));
  results.push(qf({ weights: 'float32', storage: true, arena: false }));
  if (!quick) results.push(qf({ weights: 'float32', fuseLinears: false, storage: true }));
  results.push(qf({ weights: 'int8' }));
  results.push(qf({ weights: 'int8', storage: true }));
  const dir = mkdtempSync(join(tmpdir(), 'qf-onnx-bench-'));
  let startup: MeasureResult | undefined;
  try {
    for (const weights of ['float32', 'int8'] as const) {
      const file = await exportWorkload(w, join(dir, weights), weights);
      results.push(child({ kind: 'qformer', mode: 'file', file, weights, ...base }));
      if (weights === 'float32') startup = child({ kind: 'startup', file, ...base });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rerank: MeasureResult[] = [];
  if (!flag('no-rerank')) {
    const r = {
      kind: 'rerank',
      ...base,
      runs: rerankRuns,
      texts: rerankTexts,
      textLength,
      storage: true,
    } as const;
    rerank.push(child({ ...r, shared: false, weights: 'float32' }));
    rerank.push(child({ ...r, shared: true, weights: 'float32' }));
    rerank.push(child({ ...r, shared: false, weights: 'int8' }));
    rerank.push(child({ ...r, shared: true, weights: 'int8' }));
  }
  const peakG = peak.matmulGflopPerSec ?? Number.NaN;
  const report = {
    workload: w.name,
    gflopPerImage: gflopPerImage(w),
    threads,
    cpu: cpus()[0]?.model,
    node: process.version,
    matmulPeakGflopPerSec: peakG,
    loadAverage: { start: loadAtStart, end: loadavg() },
    startup: startup?.startup,
    rerank: { texts: rerankTexts, textLength, results: rerank },
    results: results.map((r) => ({
      ...r,
      rows: r.rows.map((row) => ({ ...row, fractionOfMatmulPeak: row.gflopPerSec / peakG })),
    })),
  };
  console.log(JSON.stringify(report, null, 2));
  const lines = [
    `### ONNX backend: ${w.name}, ${gflopPerImage(w).toFixed(2)} GFLOP/image, ${threads} threads, ORT MatMul peak ${peakG.toFixed(1)} GFLOP/s`,
    '',
    '| path | batch | median ms | images/s | GFLOP/s | of MatMul peak | peak RSS MiB |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of report.results) {
    for (const row of r.rows) {
      lines.push(
        `| ${r.label} | ${row.batch} | ${row.medianMs.toFixed(1)} | ${row.imagesPerSec.toFixed(2)} | ${row.gflopPerSec.toFixed(1)} | ${(100 * row.fractionOfMatmulPeak).toFixed(0)}% | ${r.peakRssMiB.toFixed(0)} |`,
      );
    }
  }
  const weightMiB = results.find((r) => r.weightMiB)?.weightMiB;
  if (weightMiB) lines.push('', `fp32 weight bytes: ${weightMiB.toFixed(0)} MiB.`);
  if (rerank.length > 0) {
    const rw = rerank[0]?.weightMiB ?? 0;
    lines.push(
      '',
      `### ITM re-ranking: 1 image x ${rerankTexts} texts of ${textLength} tokens (text path + ITM head, fp32 weights ${rw.toFixed(0)} MiB), ${threads} threads`,
      '',
      '| path | median ms | texts/s | GFLOP/s | speed-up | peak RSS MiB |',
      '|---|---:|---:|---:|---:|---:|',
    );
    for (const r of rerank) {
      const row = r.rows[0];
      if (!row) continue;
      const naive = rerank.find((x) => x.label.startsWith('naive') && sameWeights(x.label, r.label))?.rows[0];
      const speedup = naive ? `${(naive.medianMs / row.medianMs).toFixed(2)}x` : '';
      lines.push(
        `| ${r.label} | ${row.medianMs.toFixed(0)} | ${row.imagesPerSec.toFixed(1)} | ${row.gflopPerSec.toFixed(1)} | ${speedup} | ${r.peakRssMiB.toFixed(0)} |`,
      );
    }
  }
  if (startup?.startup) {
    lines.push(
      '',
      '### Session start-up (query graph, fp32)',
      '',
      '| how | create ms | B=1 median ms |',
      '|---|---:|---:|',
    );
    for (const s of startup.startup)
      lines.push(`| ${s.label} | ${s.createMs.toFixed(0)} | ${s.runMs.toFixed(1)} |`);
  }
  const fmt = (l: number[]) => l.map((x) => x.toFixed(2)).join(', ');
  lines.push(
    '',
    `load average (1, 5, 15 min): ${fmt(loadAtStart)} at the start, ${fmt(loadavg())} at the end.`,
  );
  console.log(`\n${lines.join('\n')}`);
  if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(report, null, 2)}\n`);
}

function sameWeights(a: string, b: string): boolean {
  return a.slice(a.indexOf('(')) === b.slice(b.indexOf('('));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
