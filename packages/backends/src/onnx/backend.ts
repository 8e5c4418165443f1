import type { Backend, GraphFn, Ops, ParamStore } from '@qf/core';
import { paramStore } from '@qf/core';
import { type HostTensor, toFloat32 } from '@qf/io';
import { type BuildOptions, type BuiltGraph, PROTOBUF_LIMIT, buildGraph, encodeInline } from './build.js';
import { OnnxBackendError } from './errors.js';
import { type InferenceSession, type OrtModule, elemTypeOf, fromOrtTensor, toOrtTensor } from './ort.js';
import { type InputSpec, Recorder, type Recording, traceDims } from './record.js';
import type { OnnxStorage } from './storage.js';
import { type ParamData, Sym } from './trace.js';
import type { WeightFormat } from './weights.js';

/** ORT graph optimization levels. */
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** Options of {@link createOnnxBackend}. */
export interface OnnxBackendOptions {
  /**
   * The onnxruntime module: `await import('onnxruntime-node')` or `await import('onnxruntime-web')`.
   * May be omitted for a backend that only records and exports graphs.
   */
  readonly ort?: OrtModule | undefined;
  /** Threads per operator (ORT `intraOpNumThreads`); default: ORT's choice. */
  readonly intraOpNumThreads?: number;
  /** ORT graph optimization level (default `all`). */
  readonly graphOptimizationLevel?: GraphOptimizationLevel;
  /** Execution providers, e.g. `['cpu']`, `['wasm']`, `['webgpu', 'wasm']` (default: ORT's default). */
  readonly executionProviders?: InferenceSession.SessionOptions['executionProviders'];
  /**
   * Where ORT saves each graph after optimization (Node only), keyed by graph key; return undefined to
   * skip. The file can be loaded later with optimization `disabled` to skip optimizing at start-up.
   */
  readonly optimizedModelPath?: (key: string) => string | undefined;
  /** Fuse sibling linears (Q/K/V) into one MatMul (default true). */
  readonly fuseLinears?: boolean;
  /** How parameters are stored in the graphs (default `float32`; `int8` quantizes MatMul weights). */
  readonly weights?: WeightFormat;
  /**
   * Keep weights out of the JS heap and create sessions from files (Node: `tempFileStorage()` from
   * `@qf/backends/onnx/node`): the process no longer holds JS, encoded and ORT copies of the weights
   * at once (BLIP-2 query path, fp32: peak RSS 4.3x -> 2.3x the weight bytes; see the README).
   * Default: weights in memory, sessions from an in-memory model.
   */
  readonly storage?: OnnxStorage;
  /** Extra ORT session options (merged last). */
  readonly sessionOptions?: InferenceSession.SessionOptions;
  /** Backend name (default `onnx`). */
  readonly name?: string;
}

interface CachedGraph {
  readonly storeIds: ReadonlySet<number>;
  readonly session: Promise<InferenceSession>;
}

/**
 * The ONNX backend: `run(key, fn, inputs)` records `fn` on symbolic inputs into an ONNX graph
 * (parameters become initializers), compiles it into an ORT `InferenceSession` once per key, input
 * signature and parameter set, and runs it. Recording is cheap (plain JS objects) and happens on each
 * call to find which compiled graph applies; encoding and session creation happen once.
 */
export class OnnxBackend implements Backend<Sym> {
  readonly name: string;
  private readonly recorder: Recorder;
  private readonly cache = new Map<string, CachedGraph>();
  private readonly stores = new Map<number, ParamData[]>();
  private nextStoreId = 1;
  private disposed = false;
  private capture: Recording[] | undefined;

  constructor(private readonly options: OnnxBackendOptions) {
    this.name = options.name ?? 'onnx';
    this.recorder = new Recorder(this.name);
  }

  /** The recording op interface (usable only while `run` traces a function). */
  get ops(): Ops<Sym> {
    return this.recorder.ops;
  }

  /** Number of live compiled sessions. */
  get sessionCount(): number {
    return this.cache.size;
  }

  createParams(tensors: ReadonlyMap<string, HostTensor>): ParamStore<Sym> {
    this.checkAlive();
    const storeId = this.nextStoreId++;
    const datas: ParamData[] = [];
    const map = new Map<string, Sym>();
    const storage = this.options.storage;
    for (const [name, t] of tensors) {
      const values = toFloat32(t);
      const p: ParamData = storage
        ? { storeId, shape: [...t.shape], data: undefined, read: storage.putParam(values) }
        : { storeId, shape: [...t.shape], data: values };
      datas.push(p);
      map.set(name, new Sym(undefined, name, 'float32', p.shape, p));
    }
    this.stores.set(storeId, datas);
    return paramStore(map);
  }

  /** Frees the parameters' host data and releases every session that captured them. */
  disposeParams(params: ParamStore<Sym>): void {
    const ids = new Set<number>();
    for (const name of params.names()) {
      const p = params.get(name).param;
      if (!p) continue;
      ids.add(p.storeId);
      p.data = undefined;
      p.read = undefined;
    }
    for (const id of ids) this.stores.delete(id);
    for (const [key, g] of [...this.cache]) {
      if ([...g.storeIds].some((id) => ids.has(id))) this.releaseEntry(key, g);
    }
  }

  async run<K extends string>(
    key: string,
    fn: GraphFn<Sym, K>,
    inputs: Record<string, HostTensor>,
  ): Promise<Record<K, HostTensor>> {
    this.checkAlive();
    const specs: Record<string, InputSpec> = {};
    const dims = traceDims(inputs);
    for (const [name, t] of Object.entries(inputs))
      specs[name] = { elemType: elemTypeOf(t), dims: dims[name] ?? [] };
    const rec = this.recorder.record(fn, specs);
    if (this.capture) {
      this.capture.push(rec);
      return {} as Record<K, HostTensor>;
    }
    const signature = Object.entries(specs)
      .map(([n, s]) => `${n}:${s.elemType}:${s.dims.join('x')}`)
      .join(',');
    const stores = [...rec.trace.storeIds].sort((a, b) => a - b).join('.');
    const cacheKey = `${key}|${signature}|p${stores}|n${rec.trace.nodes.length}|i${rec.trace.inits.size}|o${Object.keys(rec.outputs).join(',')}`;
    let entry = this.cache.get(cacheKey);
    if (!entry) {
      const built = buildGraph(rec, this.buildOptions(key));
      entry = { storeIds: rec.trace.storeIds, session: this.createSession(key, built) };
      this.cache.set(cacheKey, entry);
      entry.session.catch(() => this.cache.delete(cacheKey));
    }
    const session = await entry.session;
    const feeds: Record<string, ReturnType<typeof toOrtTensor>> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = toOrtTensor(this.ortModule(), name, t);
    let results: InferenceSession.ReturnType;
    try {
      results = await session.run(feeds);
    } catch (e) {
      if (this.disposed)
        throw new OnnxBackendError('ONNX_DISPOSED', 'the onnx backend was disposed during run', { cause: e });
      throw new OnnxBackendError(
        'ONNX_RUNTIME',
        `ONNX Runtime failed to run graph "${key}": ${(e as Error).message}`,
        { cause: e },
      );
    }
    const out = {} as Record<K, HostTensor>;
    for (const name of Object.keys(rec.outputs) as K[]) {
      const t = results[name];
      if (!t) throw new OnnxBackendError('ONNX_RUNTIME', `ONNX Runtime returned no output "${name}"`);
      out[name] = fromOrtTensor(name, t);
    }
    return out;
  }

  /**
   * Records the graphs that `work` runs on this backend instead of running them (every `run` inside
   * resolves to `{}`), e.g. `backend.recordRuns(() => model.run(dummyInputs))`. Used for export.
   */
  async recordRuns(work: () => Promise<unknown>): Promise<Recording[]> {
    this.checkAlive();
    if (this.capture) throw new OnnxBackendError('ONNX_TRACE', 'recordRuns calls cannot overlap');
    const captured: Recording[] = [];
    this.capture = captured;
    try {
      await work();
    } finally {
      this.capture = undefined;
    }
    return captured;
  }

  /** Releases the compiled sessions of one graph key (every signature), or of all keys. */
  async release(key?: string): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const [k, g] of [...this.cache])
      if (key === undefined || k.startsWith(`${key}|`)) jobs.push(this.releaseEntry(k, g));
    await Promise.all(jobs);
  }

  /** Releases every session and parameter; later calls throw `OnnxBackendError` (`ONNX_DISPOSED`). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.release();
    this.disposed = true;
    for (const datas of this.stores.values())
      for (const p of datas) {
        p.data = undefined;
        p.read = undefined;
      }
    this.stores.clear();
    await this.options.storage?.dispose();
  }

  private releaseEntry(cacheKey: string, g: CachedGraph): Promise<void> {
    this.cache.delete(cacheKey);
    return g.session.then(
      (s) => s.release(),
      () => undefined,
    );
  }

  private ortModule(): OrtModule {
    if (!this.options.ort)
      throw new OnnxBackendError(
        'ONNX_RUNTIME',
        'this onnx backend was created without an ort module: it can record and export only',
      );
    return this.options.ort;
  }

  private checkAlive(): void {
    if (this.disposed) throw new OnnxBackendError('ONNX_DISPOSED', 'the onnx backend was disposed');
  }

  private buildOptions(key: string): BuildOptions {
    return {
      fuseLinears: this.options.fuseLinears ?? true,
      weights: this.options.weights ?? 'float32',
      graphName: key,
    };
  }

  private async createSession(key: string, graph: BuiltGraph): Promise<InferenceSession> {
    const o = this.options;
    if (o.storage) {
      // From a file with external data: no encoded copy of the weights in memory.
      const path = await o.storage.writeModel(graph);
      try {
        return await this.openSession(key, path);
      } finally {
        await o.storage.removeModel(path);
      }
    }
    const bytes = encodeInline(graph);
    if (bytes.byteLength > PROTOBUF_LIMIT)
      throw new OnnxBackendError('ONNX_EXPORT', 'graph too large for an in-memory session');
    return this.openSession(key, bytes);
  }

  private async openSession(key: string, model: Uint8Array | string): Promise<InferenceSession> {
    const o = this.options;
    const opts: InferenceSession.SessionOptions = {
      graphOptimizationLevel: o.graphOptimizationLevel ?? 'all',
      ...(o.intraOpNumThreads !== undefined
        ? { intraOpNumThreads: o.intraOpNumThreads, interOpNumThreads: 1 }
        : {}),
      ...(o.executionProviders ? { executionProviders: o.executionProviders } : {}),
      ...(o.optimizedModelPath?.(key) ? { optimizedModelFilePath: o.optimizedModelPath(key) } : {}),
      ...o.sessionOptions,
    };
    try {
      return await this.ortModule().InferenceSession.create(model, opts);
    } catch (e) {
      throw new OnnxBackendError(
        'ONNX_RUNTIME',
        `ONNX Runtime could not load graph "${key}": ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
}

/**
 * Creates the ONNX backend on an injected onnxruntime module.
 * @example
 * ```ts
 * import { createOnnxBackend } from '@qf/backends/onnx';
 * const backend = createOnnxBackend({ ort: await import('onnxruntime-node'), intraOpNumThreads: 2 });
 * ```
 */
export function createOnnxBackend(options: OnnxBackendOptions): OnnxBackend {
  return new OnnxBackend(options);
}
