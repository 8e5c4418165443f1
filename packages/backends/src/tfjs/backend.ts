import type { Backend, GradResult, GraphFn, LossFn, Ops, ParamAssignment, ParamStore } from '@qf/core';
import { type HostTensor, QfError, TensorError, fmtShape } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import { download, upload } from './convert.js';
import { ensureGradients } from './gradients.js';
import { tfjsOps } from './ops.js';
import { TfjsParamStore, TransposedExcept } from './train.js';
import { TransposedWeights } from './transposed.js';

/**
 * The host side of the tfjs backend: `run` calls the model function eagerly inside `tf.tidy`, so
 * every intermediate tensor is freed; inputs and outputs are disposed after download.
 * Training: `valueAndGrad` differentiates a loss with tfjs autodiff and leaves the gradients on the
 * backend; `assignParams` updates parameter stores in place; `readParams` copies them to the host.
 */
export class TfjsBackend implements Backend<tf.Tensor> {
  readonly name: string;
  readonly ops: Ops<tf.Tensor>;
  private readonly transposed: TransposedWeights;

  /**
   * @param transposedWeights keep [in, out] copies of linear weights (faster on wasm, more memory)
   */
  constructor(tfjsBackendName: string, transposedWeights = true) {
    this.name = `tfjs-${tfjsBackendName}`;
    this.transposed = new TransposedWeights(transposedWeights);
    this.ops = tfjsOps(this.name, this.transposed);
  }

  createParams(tensors: ReadonlyMap<string, HostTensor>): ParamStore<tf.Tensor> {
    const map = new Map<string, tf.Tensor>();
    for (const [name, t] of tensors) {
      const param = upload(name, t);
      this.transposed.register(param);
      map.set(name, param);
    }
    return new TfjsParamStore(map);
  }

  disposeParams(params: ParamStore<tf.Tensor>): void {
    for (const name of params.names()) {
      const param = params.get(name);
      this.transposed.release(param);
      param.dispose();
    }
  }

  async run<K extends string>(
    _key: string,
    fn: GraphFn<tf.Tensor, K>,
    inputs: Record<string, HostTensor>,
  ): Promise<Record<K, HostTensor>> {
    const uploaded: Record<string, tf.Tensor> = {};
    let outputs: Record<K, tf.Tensor> | undefined;
    try {
      for (const [name, t] of Object.entries(inputs)) uploaded[name] = upload(name, t);
      outputs = tf.tidy(() => fn(this.ops, uploaded));
      const result = {} as Record<K, HostTensor>;
      for (const [name, t] of Object.entries(outputs) as [K, tf.Tensor][]) result[name] = await download(t);
      return result;
    } finally {
      tf.dispose(Object.values(uploaded));
      if (outputs) tf.dispose(Object.values(outputs) as tf.Tensor[]);
    }
  }

  async valueAndGrad<K extends string = never>(
    fn: LossFn<tf.Tensor, K>,
    params: ParamStore<tf.Tensor>,
    trainable: readonly string[],
    inputs: Record<string, HostTensor>,
  ): Promise<GradResult<tf.Tensor, K>> {
    ensureGradients();
    const names = [...new Set(trainable)];
    const xs = names.map((name) => {
      const x = params.get(name); // TensorError TENSOR_MISSING names it
      if (x.dtype !== 'float32')
        throw new TensorError(
          'TENSOR_DTYPE',
          name,
          'a trainable parameter must be float32',
          'float32',
          x.dtype,
        );
      return x;
    });
    // Differentiated weights skip the transposed-weight cache (their gradient must see the transpose).
    const ops = tfjsOps(this.name, new TransposedExcept(this.transposed, new Set(xs.map((x) => x.id))));
    const uploaded: Record<string, tf.Tensor> = {};
    const aux: Record<string, tf.Tensor> = {};
    let result: { value: tf.Tensor; grads: tf.Tensor[] } | undefined;
    let owned = false;
    try {
      for (const [name, t] of Object.entries(inputs)) uploaded[name] = upload(name, t);
      const shared = new Set([
        ...params.names().map((n) => params.get(n).id),
        ...Object.values(uploaded).map((t) => t.id),
      ]);
      let bad: string | undefined;
      try {
        result = tf.tidy(() => {
          const { value, grads } = tf.engine().gradients(
            () => {
              const out: Record<string, tf.Tensor | undefined> = fn(ops, params, uploaded);
              for (const [name, t] of Object.entries(out)) {
                if (name === 'loss' || t === undefined) continue;
                // A parameter or input returned as is gets a copy: outputs are freed after download.
                aux[name] = tf.keep(shared.has(t.id) ? tf.clone(t) : t);
              }
              const loss = out['loss'];
              if (loss && loss.rank === 0 && loss.dtype === 'float32') return loss;
              // Checked after the backward pass: throwing here would strand the tape's saved tensors.
              bad = loss ? `${loss.dtype} ${fmtShape(loss.shape)}` : 'none';
              return tf.scalar(0);
            },
            xs,
            undefined,
            true,
          );
          return { value, grads: grads.map((g, i) => g ?? tf.zerosLike(xs[i] as tf.Tensor)) };
        });
      } catch (e) {
        releaseTape();
        throw e;
      }
      if (bad !== undefined)
        throw new QfError(
          'BACKEND_LOSS',
          `valueAndGrad: the loss function must return a float32 scalar "loss" (got ${bad})`,
        );
      const lossHost = await download(result.value);
      const host: Record<string, HostTensor> = { loss: lossHost };
      for (const [name, t] of Object.entries(aux)) host[name] = await download(t);
      const outputs = host as { loss: HostTensor } & Partial<Record<K, HostTensor>>;
      const loss = (lossHost.data as Float32Array)[0] as number;
      const grads = new TfjsParamStore(new Map(names.map((n, i) => [n, result?.grads[i] as tf.Tensor])));
      owned = true;
      return { loss, outputs, grads };
    } finally {
      tf.dispose(Object.values(uploaded));
      tf.dispose(Object.values(aux));
      if (result) {
        result.value.dispose();
        if (!owned) tf.dispose(result.grads);
      }
    }
  }

  async readParams(
    store: ParamStore<tf.Tensor>,
    names?: readonly string[],
  ): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const name of names ?? store.names()) out.set(name, await download(store.get(name)));
    return out;
  }

  async assignParams(fn: (ops: Ops<tf.Tensor>) => readonly ParamAssignment<tf.Tensor>[]): Promise<void> {
    const values: tf.Tensor[] = [];
    let assignments: readonly ParamAssignment<tf.Tensor>[] = [];
    try {
      tf.tidy(() => {
        assignments = fn(this.ops);
        const seen = new Map<ParamStore<tf.Tensor>, Set<string>>();
        for (const a of assignments) {
          if (!(a.store instanceof TfjsParamStore))
            throw new QfError(
              'BACKEND_ASSIGN',
              `assignParams: "${a.name}" is not in a store made by ${this.name}`,
            );
          const names = seen.get(a.store) ?? new Set<string>();
          if (names.has(a.name))
            throw new QfError('BACKEND_ASSIGN', `assignParams: "${a.name}" is assigned twice`);
          names.add(a.name);
          seen.set(a.store, names);
          const old = a.store.get(a.name);
          if (old.shape.length !== a.value.shape.length || old.shape.some((d, i) => d !== a.value.shape[i]))
            throw new QfError(
              'BACKEND_ASSIGN',
              `assignParams: "${a.name}" would change shape from ${fmtShape(old.shape)} to ${fmtShape(a.value.shape)}`,
            );
          // A copy (tfjs shares the data), so that no two store entries are the same tensor object.
          values.push(tf.keep(a.value.dtype === old.dtype ? tf.clone(a.value) : tf.cast(a.value, old.dtype)));
        }
      });
    } catch (e) {
      tf.dispose(values);
      throw e;
    }
    assignments.forEach((a, i) => {
      const value = values[i] as tf.Tensor;
      const old = (a.store as TfjsParamStore).replace(a.name, value);
      this.transposed.release(old);
      old.dispose();
      this.transposed.register(value);
    });
  }
}

/**
 * After a loss function threw mid-forward, frees the tensors that tfjs saved for the backward pass
 * (tfjs only frees them at the end of a completed backward pass) and drops the tape.
 */
function releaseTape(): void {
  const state = (
    tf.engine() as unknown as {
      state?: { gradientDepth?: number; activeTape?: { saved?: tf.Tensor[] }[] | null };
    }
  ).state;
  if (!state || state.gradientDepth !== 0 || !state.activeTape) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = null;
}
