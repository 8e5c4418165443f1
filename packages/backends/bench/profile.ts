/** Profiles one B=8 run of the workload with ORT's profiler and prints time per op type. */
import { readFileSync } from 'node:fs';
import { QFormerModel } from '@qf/core';
import { createOnnxBackend } from '@qf/backends/onnx';
import * as ort from 'onnxruntime-node';
import { imageEmbeds, weights, workload } from './workload.js';

const w = workload(process.argv.includes('--quick'));
const b = Number(process.argv[2] ?? '8');
const backend = createOnnxBackend({
  ort,
  intraOpNumThreads: 2,
  weights: process.argv.includes('--int8') ? 'int8' : 'float32',
  sessionOptions: { enableProfiling: true, profileFilePrefix: '/tmp/prof/qf' },
  optimizedModelPath: () => '/tmp/prof/optimized.onnx',
});
const model = QFormerModel.fromTensors(backend, w.spec, weights(w).tensors);
for (let i = 0; i < 3; i++) await model.run({ image_embeds: imageEmbeds(w, b) });
const sessions = (
  backend as unknown as { cache: Map<string, { session: Promise<{ endProfiling(): string }> }> }
).cache;
const [entry] = sessions.values();
await (await entry!.session).endProfiling();
const { readdirSync } = await import('node:fs');
const file = `/tmp/prof/${readdirSync('/tmp/prof')
  .filter((f) => f.startsWith('qf') && f.endsWith('.json'))
  .sort()
  .pop()}`;
const events = JSON.parse(readFileSync(file, 'utf8')) as {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}[];
const by = new Map<string, number>();
let total = 0;
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
  const op = e.args?.op_name ?? '?';
  by.set(op, (by.get(op) ?? 0) + e.dur);
  total += e.dur;
}
for (const [op, us] of [...by].sort((x, y) => y[1] - x[1]))
  console.log(op.padEnd(28), (us / 1000 / 3).toFixed(1), 'ms/run', ((100 * us) / total).toFixed(1), '%');
await backend.dispose();
