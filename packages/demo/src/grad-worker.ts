/**
 * The worker thread of {@link GradWorker} (see parallel.ts): opens its own backend, builds its task's
 * loss, then answers each request, in order, with the loss and gradients at the parameters it was
 * sent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type GradResult, type ParamStore, Rng, type TrainingBackend } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { type Stage1Batch, stage1ValueAndGrad } from '@qf/losses';
import { openTraining } from './backend.js';
import { DEFAULT_SIZES, demoConfig } from './config.js';
import { TOKENS } from './data.js';
import { encoderLoss } from './encoder.js';
import type { GradReply, GradRequest, GradWorkerTask } from './parallel.js';
import { qformerSpec, stage2KeepTrainable } from './qformer.js';

type Compute = (params: ParamStore<unknown>, inputs: unknown) => Promise<GradResult<unknown, string>>;

/** The task's gradient function on `backend`. */
function taskCompute(backend: TrainingBackend<unknown>, task: GradWorkerTask): Compute {
  const config = demoConfig(task.sizes ?? DEFAULT_SIZES);
  if (task.task === 'encoder') {
    const loss = encoderLoss<unknown>(config.vision, task.denseWeight);
    return (params, inputs) =>
      backend.valueAndGrad(loss, params, params.names(), inputs as Record<string, HostTensor>);
  }
  const spec = qformerSpec(config);
  const trainable = stage2KeepTrainable(spec, task.keep);
  const rng = new Rng(task.rngSeed);
  return (params, inputs) =>
    stage1ValueAndGrad(backend, spec, params, inputs as Stage1Batch, {
      decoderBosId: TOKENS.qformer.dec,
      padTokenId: TOKENS.qformer.pad,
      trainable,
      rng,
      parts: [...task.keep],
    });
}

if (!parentPort) throw new Error('grad-worker runs as a worker thread');
const port = parentPort;
const task = workerData as GradWorkerTask;
const reply = (m: GradReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

async function main(): Promise<void> {
  try {
    const backend = await openTraining(task.backend ?? 'tfjs-wasm');
    const compute = taskCompute(backend, task);
    let params: ParamStore<unknown> | undefined;
    // One request at a time, in arrival order (the sampler's draws depend on it).
    let queue = Promise.resolve();
    port.on('message', (m: GradRequest) => {
      queue = queue.then(async () => {
        try {
          if (params) backend.disposeParams(params);
          params = backend.createParams(new Map(Object.entries(m.params)));
          const r = await compute(params, m.inputs);
          let grads: Map<string, HostTensor>;
          try {
            grads = await backend.readParams(r.grads);
          } finally {
            backend.disposeParams(r.grads);
          }
          const outputs = Object.fromEntries(
            Object.entries(r.outputs).filter(([, v]) => v !== undefined && v.shape.length === 0),
          ) as Record<string, HostTensor>;
          reply(
            { id: m.id, loss: r.loss, outputs, grads: Object.fromEntries(grads) },
            [...grads.values()].map((t) => (t.data as Float32Array).buffer as ArrayBuffer),
          );
        } catch (e) {
          reply({ id: m.id, error: (e as Error).message });
        }
      });
    });
    reply({ ready: true });
  } catch (e) {
    reply({ error: (e as Error).message });
  }
}

void main();
