/**
 * ONNX backend benchmark: the BLIP-2 default Q-Former query path (12.75 GFLOP per image) at B=1 and
 * B=8 with a fixed thread count, float32 and int8 weights, through the backend and through an
 * exported file, plus an ORT MatMul peak measured in the same run. Each measurement runs in its own
 * process (so peak RSS is its own). Prints JSON and a Markdown table.
 *
 *   pnpm --filter @qf/backends bench:onnx [--quick] [--threads 2] [--runs 12] [--json out.json]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
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

function child(req: MeasureRequest): MeasureResult {
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, join(here, 'measure.ts'), JSON.stringify(req)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    },
  );
  return JSON.parse(out.trim().split('\n').pop() as string) as MeasureResult;
}

async function main(): Promise<void> {
  const w = workload(quick);
  const base = { quick, threads, batches, runs };
  const peak = child({ kind: 'matmul', ...base, runs: Math.max(runs, 10) });
  const results: MeasureResult[] = [];
  results.push(child({ kind: 'qformer', mode: 'backend', weights: 'float32', ...base }));
  if (!quick)
    results.push(
      child({ kind: 'qformer', mode: 'backend', weights: 'float32', fuseLinears: false, ...base }),
    );
  results.push(child({ kind: 'qformer', mode: 'backend', weights: 'int8', ...base }));
  const dir = mkdtempSync(join(tmpdir(), 'qf-onnx-bench-'));
  try {
    for (const weights of ['float32', 'int8'] as const) {
      const file = await exportWorkload(w, join(dir, weights), weights);
      results.push(child({ kind: 'qformer', mode: 'file', file, weights, ...base }));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const peakG = peak.matmulGflopPerSec ?? Number.NaN;
  const report = {
    workload: w.name,
    gflopPerImage: gflopPerImage(w),
    threads,
    cpu: cpus()[0]?.model,
    node: process.version,
    matmulPeakGflopPerSec: peakG,
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
  console.log(`\n${lines.join('\n')}`);
  if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(report, null, 2)}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
