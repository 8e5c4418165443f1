/**
 * Data parallelism over two CPU cores. tfjs-wasm runs single-threaded in Node, so the recipe uses
 * the second core by splitting a batch in two: this thread differentiates one half while a worker
 * thread (`grad-worker`), holding a copy of the parameters, differentiates the other; the two
 * gradients are averaged and the optimiser steps here. Before each step the worker gets the current
 * parameters, so both halves see the same weights.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { GradResult, LossFn, ParamStore, TrainingBackend } from '@qf/core';
import type { HostTensor } from '@qf/io';
import type { DemoSizes } from './config.js';
import { DemoError } from './errors.js';
import type { DemoBackendName } from './options.js';

/**
 * What the worker thread builds: the loss it differentiates (the encoder's auxiliary loss, or the
 * stage-1 objectives stage 2 keeps, with their own hard-negative sampler seeded `rngSeed`) and the
 * backend and model sizes it runs them on.
 */
export type GradWorkerTask = {
  readonly backend: DemoBackendName | undefined;
  readonly sizes: DemoSizes | undefined;
} & (
  | { readonly task: 'encoder'; readonly denseWeight: number }
  | { readonly task: 'stage2-keep'; readonly keep: readonly ('itc' | 'itm')[]; readonly rngSeed: number }
);

/** What the worker computes: the loss, every scalar output, the gradients (host tensors). */
export interface WorkerGrads {
  readonly loss: number;
  readonly outputs: Record<string, HostTensor>;
  readonly grads: Map<string, HostTensor>;
}

/** Messages of the worker protocol (the inputs are the task's: host tensors, or a Stage1Batch). */
export type GradRequest = {
  readonly id: number;
  readonly params: Record<string, HostTensor>;
  readonly inputs: unknown;
};
export type GradReply =
  | { readonly ready: true }
  | {
      readonly id: number;
      readonly loss: number;
      readonly outputs: Record<string, HostTensor>;
      readonly grads: Record<string, HostTensor>;
    }
  | { readonly id?: number; readonly error: string };

const buffers = (m: Record<string, HostTensor>) =>
  Object.values(m).map((t) => (t.data as Float32Array).buffer as ArrayBuffer);

/**
 * The worker next to this module: the built `grad-worker.js`, or, when this module runs from its
 * TypeScript source (tests), `grad-worker.ts` behind tsx's loader.
 */
function spawn(task: GradWorkerTask): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./grad-worker.js', here), { workerData: task });
  const script = new URL('./grad-worker.ts', here).href;
  // tsx's ESM API (a dev dependency) registers its hooks inside the worker before the script loads.
  const api = new URL(
    'dist/esm/api/index.mjs',
    pathToFileURL(createRequire(here).resolve('tsx/package.json')),
  ).href;
  const code = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); });`;
  return new Worker(code, { eval: true, workerData: task });
}

/** A worker thread that differentiates the task's loss on the inputs and parameters it is sent. */
export class GradWorker {
  private next = 0;
  private readonly pending = new Map<
    number,
    { resolve: (r: WorkerGrads) => void; reject: (e: Error) => void }
  >();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: GradReply) => {
      if ('ready' in m) return;
      const p = m.id === undefined ? undefined : this.pending.get(m.id);
      if ('error' in m) {
        const e = new DemoError('DEMO_BACKEND', `the gradient worker failed: ${m.error}`);
        if (p) p.reject(e);
        else this.fail(e);
      } else if (p) p.resolve({ loss: m.loss, outputs: m.outputs, grads: new Map(Object.entries(m.grads)) });
      if (m.id !== undefined) this.pending.delete(m.id);
    });
    worker.on('error', (e) =>
      this.fail(new DemoError('DEMO_BACKEND', `the gradient worker failed: ${e.message}`, { cause: e })),
    );
    worker.on('exit', (code) => {
      if (this.pending.size > 0)
        this.fail(new DemoError('DEMO_BACKEND', `the gradient worker exited (code ${code})`));
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Starts the worker and waits until its backend is open. */
  static async start(task: GradWorkerTask): Promise<GradWorker> {
    const worker = spawn(task);
    await new Promise<void>((resolve, reject) => {
      const fail = (e: Error) =>
        reject(new DemoError('DEMO_BACKEND', `cannot start the gradient worker: ${e.message}`, { cause: e }));
      worker.once('error', fail);
      worker.once('message', (m: GradReply) => {
        worker.off('error', fail);
        if ('ready' in m) resolve();
        else fail(new Error('error' in m ? m.error : 'unexpected first message'));
      });
    });
    return new GradWorker(worker);
  }

  /**
   * Loss and gradients of the task's loss at `params` on `inputs` (the parameters' buffers move to
   * the worker; the inputs are copied). Requests are answered in order.
   */
  compute(params: ReadonlyMap<string, HostTensor>, inputs: unknown): Promise<WorkerGrads> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    const request: GradRequest = { id, params: Object.fromEntries(params), inputs };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(request, buffers(request.params));
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * One data-parallel gradient: `halves[0]` here, `halves[1]` on the worker, both at the current
 * `params`; the mean of the two gradients (and of the two losses), left in this backend's store.
 */
export async function dataParallelGrads<T>(
  backend: TrainingBackend<T>,
  params: ParamStore<T>,
  trainable: readonly string[],
  loss: LossFn<T>,
  worker: GradWorker,
  halves: readonly [Record<string, HostTensor>, Record<string, HostTensor>],
): Promise<GradResult<T>> {
  const remote = worker.compute(await backend.readParams(params, trainable), halves[1]);
  // Settled either way below, so that a local failure does not leave it unhandled.
  remote.catch(() => undefined);
  const local = await backend.valueAndGrad(loss, params, trainable, halves[0]);
  let other: ParamStore<T> | undefined;
  try {
    const r = await remote;
    other = backend.createParams(r.grads);
    const o = other;
    await backend.assignParams((ops) =>
      trainable.map((n) => ({
        store: local.grads,
        name: n,
        value: ops.mul(ops.add(local.grads.get(n), o.get(n)), ops.scalar(0.5)),
      })),
    );
    return { loss: (local.loss + r.loss) / 2, grads: local.grads, outputs: local.outputs };
  } catch (e) {
    backend.disposeParams(local.grads);
    throw e;
  } finally {
    if (other) backend.disposeParams(other);
  }
}
