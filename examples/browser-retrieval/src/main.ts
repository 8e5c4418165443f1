// Loads an HF BLIP-2 retrieval checkpoint over HTTP (range requests: only the Q-Former's tensors
// are fetched), runs the Q-Former on the backend chosen by `?backend=`, and shows ITC/ITM scores.
// Query parameters: backend (tfjs: wasm | webgl | webgpu | cpu; ONNX Runtime Web: onnx-wasm |
// onnx-webgpu), threads (ONNX Runtime Web's wasm threads; more than 1 needs a cross-origin isolated
// page: `serve.mjs --isolate`), model (base URL of the HF model dir), inputs (URL of a safetensors
// file with image_embeds, input_ids, attention_mask).
import type { Backend } from '@qf/core';
import { loadQFormer } from '@qf/core';
import { type HostTensor, SafetensorsFile, openCheckpointUrl, urlSource } from '@qf/io';

const TFJS = ['wasm', 'webgl', 'webgpu', 'cpu'] as const;
const ONNX = ['onnx-wasm', 'onnx-webgpu'] as const;
type BackendChoice = (typeof TFJS)[number] | (typeof ONNX)[number];

const params = new URLSearchParams(location.search);
const backendName = params.get('backend') ?? 'wasm';
const threads = params.get('threads');
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

/** A backend plus what to call when the page is done with it. */
interface Opened {
  backend: Backend<unknown>;
  /** The runtime in words (read after a run: ORT settles its thread count on first use). */
  detail(): string;
  dispose(): Promise<void>;
}

/**
 * Opens the chosen backend. Both runtimes are imported on demand, so the page fetches only one of
 * them (build.mjs splits the bundle into chunks).
 */
async function openBackend(name: BackendChoice): Promise<Opened> {
  if (name === 'onnx-wasm' || name === 'onnx-webgpu') {
    const [{ createOnnxBackend }, ort] = await Promise.all([
      import('@qf/backends/onnx'),
      import('onnxruntime-web'),
    ]);
    // build.mjs copies ORT's wasm runtime (glue .mjs + .wasm) to dist/ort/.
    ort.env.wasm.wasmPaths = new URL('./ort/', import.meta.url).href;
    // ORT's default: 1 thread unless the page is cross-origin isolated (serve.mjs --isolate), then
    // min(4, cores / 2). `?threads=` overrides it (ORT falls back to 1 when not isolated).
    if (threads) ort.env.wasm.numThreads = Number(threads);
    if (name === 'onnx-webgpu') {
      const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      if (!gpu || !(await gpu.requestAdapter()))
        throw new Error('onnx-webgpu: WebGPU is not available in this browser');
    }
    const backend = createOnnxBackend({
      ort,
      name,
      executionProviders: name === 'onnx-webgpu' ? ['webgpu', 'wasm'] : ['wasm'],
    });
    return {
      backend: backend as Backend<unknown>,
      detail: () => {
        const n = ort.env.wasm.numThreads ?? 1;
        return `ONNX Runtime Web ${ort.env.versions.web}, ${n} wasm thread${n === 1 ? '' : 's'}`;
      },
      dispose: () => backend.dispose(),
    };
  }
  const [{ createTfjsBackend }, { setWasmPaths }] = await Promise.all([
    import('@qf/backends/tfjs'),
    import('@tensorflow/tfjs-backend-wasm'),
  ]);
  setWasmPaths(new URL('./wasm/', import.meta.url).href); // build.mjs copies the binaries there
  const backend = await createTfjsBackend(name);
  return {
    backend: backend as Backend<unknown>,
    detail: () => 'TensorFlow.js',
    dispose: async () => {},
  };
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
  const choices: readonly string[] = [...TFJS, ...ONNX];
  if (!choices.includes(backendName))
    throw new Error(`unknown backend "${backendName}" (use one of ${choices.join(', ')})`);
  const { backend, detail, dispose } = await openBackend(backendName as BackendChoice);
  status.textContent = `backend ${backend.name}: loading ${modelUrl}`;
  const { config, checkpoint } = await openCheckpointUrl(modelUrl);
  const model = await loadQFormer(backend, checkpoint, config);
  const file = await SafetensorsFile.open(await urlSource(inputsUrl));
  const inputs: Record<string, HostTensor> = {};
  for (const name of ['image_embeds', 'input_ids', 'attention_mask']) inputs[name] = await file.read(name);
  // The first run includes one-time work: tracing + compiling the ONNX graphs into sessions, or
  // tfjs's kernel/shader warm-up. The second run is the steady-state time.
  let t0 = performance.now();
  await model.run(inputs);
  const firstMs = performance.now() - t0;
  t0 = performance.now();
  const out = await model.run(inputs);
  const ms = performance.now() - t0;
  model.dispose();
  await dispose();
  renderScores(out['itc_logits'] as HostTensor, out['itm_logits'] as HostTensor);
  status.textContent = `backend ${backend.name}: Q-Former ran in ${ms.toFixed(1)} ms (first run ${firstMs.toFixed(1)} ms; ${detail()})`;
  const outputs: PageResult['outputs'] = {};
  for (const [k, v] of Object.entries(out))
    outputs[k] = { shape: [...v.shape], data: Array.from(v.data as Float32Array) };
  window.qfResult = { backend: backend.name, outputs };
}

main().catch((e: unknown) => {
  status.textContent = `error: ${String(e)}`;
  window.qfResult = { backend: backendName, outputs: {}, error: String(e) };
});
