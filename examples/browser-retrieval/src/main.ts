// Loads an HF BLIP-2 retrieval checkpoint over HTTP (range requests: only the Q-Former's tensors
// are fetched), runs the Q-Former on a tfjs backend chosen by `?backend=`, and shows ITC/ITM scores.
// Query parameters: backend (wasm | webgl | webgpu | cpu), model (base URL of the HF model dir),
// inputs (URL of a safetensors file with image_embeds, input_ids, attention_mask).
import { createTfjsBackend, type TfjsBackendName } from '@qf/backends/tfjs';
import { loadQFormer } from '@qf/core';
import { type HostTensor, SafetensorsFile, openCheckpointUrl, urlSource } from '@qf/io';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const params = new URLSearchParams(location.search);
const backendName = (params.get('backend') ?? 'wasm') as TfjsBackendName;
const modelUrl = new URL(params.get('model') ?? './model', location.href).href;
const inputsUrl = new URL(params.get('inputs') ?? './inputs.safetensors', location.href).href;
const status = document.getElementById('status') as HTMLElement;

/** What the page exposes for tests and tools: every output as plain arrays. */
interface PageResult {
  backend: string;
  outputs: Record<string, { shape: number[]; data: number[] }>;
  error?: string;
}
declare global {
  interface Window {
    qfResult?: PageResult;
  }
}

function renderScores(itc: HostTensor, itm: HostTensor): void {
  const [bi, bt] = itc.shape as [number, number];
  const rows = [
    `<tr><th>image</th>${Array.from({ length: bt }, (_, j) => `<th>ITC text ${j}</th>`).join('')}<th>ITM p(match)</th></tr>`,
  ];
  for (let i = 0; i < bi; i++) {
    const cells = Array.from(
      { length: bt },
      (_, j) => `<td>${(itc.data[i * bt + j] as number).toFixed(4)}</td>`,
    ).join('');
    const p = 1 / (1 + Math.exp((itm.data[i * 2] as number) - (itm.data[i * 2 + 1] as number)));
    rows.push(`<tr><td>${i}</td>${cells}<td>${p.toFixed(4)}</td></tr>`);
  }
  (document.getElementById('results') as HTMLTableElement).innerHTML = rows.join('');
}

async function main(): Promise<void> {
  setWasmPaths(new URL('./wasm/', import.meta.url).href); // build.mjs copies the binaries next to main.js
  const backend = await createTfjsBackend(backendName);
  status.textContent = `backend ${backend.name}: loading ${modelUrl}`;
  const { config, checkpoint } = await openCheckpointUrl(modelUrl);
  const model = await loadQFormer(backend, checkpoint, config);
  const file = await SafetensorsFile.open(await urlSource(inputsUrl));
  const inputs: Record<string, HostTensor> = {};
  for (const name of ['image_embeds', 'input_ids', 'attention_mask']) inputs[name] = await file.read(name);
  const t0 = performance.now();
  const out = await model.run(inputs);
  const ms = performance.now() - t0;
  model.dispose();
  renderScores(out['itc_logits'] as HostTensor, out['itm_logits'] as HostTensor);
  status.textContent = `backend ${backend.name}: Q-Former ran in ${ms.toFixed(1)} ms`;
  const outputs: PageResult['outputs'] = {};
  for (const [k, v] of Object.entries(out))
    outputs[k] = { shape: [...v.shape], data: Array.from(v.data as Float32Array) };
  window.qfResult = { backend: backend.name, outputs };
}

main().catch((e: unknown) => {
  status.textContent = `error: ${String(e)}`;
  window.qfResult = { backend: backendName, outputs: {}, error: String(e) };
});
