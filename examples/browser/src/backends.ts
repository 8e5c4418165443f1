// The backends the app can run on. Each runtime is imported on demand, so the page fetches only
// the one in use (Vite splits the bundle); the wasm binaries come from the app's own wasm/ and ort/
// folders (copied from node_modules at build time), never from a CDN.
import type { Backend } from '@qf/core';

export const BACKENDS = [
  { id: 'tfjs-webgpu', label: 'tfjs WebGPU' },
  { id: 'tfjs-webgl', label: 'tfjs WebGL' },
  { id: 'tfjs-wasm', label: 'tfjs wasm' },
  { id: 'tfjs-cpu', label: 'tfjs cpu' },
  { id: 'ort-wasm', label: 'ONNX Runtime Web wasm' },
  { id: 'ort-webgpu', label: 'ONNX Runtime Web WebGPU' },
] as const;

export type BackendId = (typeof BACKENDS)[number]['id'];

export function isBackendId(s: string): s is BackendId {
  return BACKENDS.some((b) => b.id === s);
}

/** An opened backend and how to release it. */
export interface OpenedBackend {
  readonly id: BackendId;
  readonly backend: Backend<unknown>;
  /** The runtime in words (threads, adapter), read after a run. */
  detail(): string;
  dispose(): Promise<void>;
}

/** The part of `navigator.gpu` used here (typed locally: not every TS DOM lib has WebGPU). */
interface GpuNavigator {
  readonly gpu?: { requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string } } | null> };
}

/** The WebGPU adapter in words, or throws with the reason there is none. */
async function webgpuAdapter(): Promise<string> {
  const gpu = (navigator as unknown as GpuNavigator).gpu;
  if (!gpu)
    throw new Error('WebGPU is not available in this browser (no navigator.gpu; needs a secure context)');
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('WebGPU has no adapter here (navigator.gpu.requestAdapter() returned null)');
  const info = adapter.info ?? {};
  return [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unknown adapter';
}

const runtimeUrl = (dir: string) => new URL(dir, document.baseURI).href;

/**
 * Opens a backend. ONNX Runtime Web's wasm EP runs 2 threads when the page is cross-origin isolated
 * (served with COOP/COEP: SharedArrayBuffer), else 1; its WebGPU EP is asked for alone, so a run
 * that cannot use WebGPU fails instead of quietly running on wasm.
 */
export async function openBackend(id: BackendId): Promise<OpenedBackend> {
  if (id === 'ort-wasm' || id === 'ort-webgpu') {
    const adapter = id === 'ort-webgpu' ? await webgpuAdapter() : undefined;
    const [{ createOnnxBackend }, ort] = await Promise.all([
      import('@qf/backends/onnx'),
      import('onnxruntime-web'),
    ]);
    ort.env.wasm.wasmPaths = runtimeUrl('ort/');
    ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? 2 : 1;
    ort.env.logLevel = 'error';
    const backend = createOnnxBackend({
      ort,
      name: id,
      executionProviders: id === 'ort-webgpu' ? ['webgpu'] : ['wasm'],
      // ORT warns (on the console, as errors) that it keeps shape ops on the CPU: expected, not news
      sessionOptions: { logSeverityLevel: 3 },
    });
    return {
      id,
      backend: backend as Backend<unknown>,
      detail: () => {
        const n = ort.env.wasm.numThreads ?? 1;
        const where = adapter ? `WebGPU (${adapter})` : `wasm, ${n} thread${n === 1 ? '' : 's'}`;
        return `ONNX Runtime Web ${ort.env.versions.web}, ${where}`;
      },
      dispose: () => backend.dispose(),
    };
  }
  const name = id.slice('tfjs-'.length) as 'webgpu' | 'webgl' | 'wasm' | 'cpu';
  const adapter = name === 'webgpu' ? await webgpuAdapter() : undefined;
  const [{ createTfjsBackend }, { setWasmPaths }, tf] = await Promise.all([
    import('@qf/backends/tfjs'),
    import('@tensorflow/tfjs-backend-wasm'),
    import('@tensorflow/tfjs-core'),
  ]);
  setWasmPaths(runtimeUrl('wasm/'));
  const backend = await createTfjsBackend(name);
  if (tf.getBackend() !== name) throw new Error(`tfjs runs on ${tf.getBackend()}, not ${name}`);
  return {
    id,
    backend: backend as Backend<unknown>,
    detail: () => {
      const extra =
        name === 'webgpu'
          ? `, ${adapter}`
          : name === 'webgl'
            ? `, WebGL ${tf.env().getNumber('WEBGL_VERSION')}, float32 textures: ${tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED')}`
            : name === 'wasm'
              ? `, ${globalThis.crossOriginIsolated ? 'threaded' : 'single-threaded'} SIMD`
              : '';
      return `TensorFlow.js ${tf.version_core} ${name}${extra}`;
    },
    dispose: async () => {},
  };
}
