import type { Backend, GraphFn, Ops, ParamStore } from '@qf/core';
import { paramStore } from '@qf/core';
import type { HostTensor } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import { download, upload } from './convert.js';
import { tfjsOps } from './ops.js';
import { TransposedWeights } from './transposed.js';

/**
 * The host side of the tfjs backend: `run` calls the model function eagerly inside `tf.tidy`, so
 * every intermediate tensor is freed; inputs and outputs are disposed after download.
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
    return paramStore(map);
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
}
