import { stat } from 'node:fs/promises';
import { type Checkpoint, type HostTensor, TensorError, fmtShape } from '@qf/io';
import { openCheckpointDir, openSafetensors } from '@qf/io/node';
import { DemoError } from './errors.js';

/**
 * Reads the tensors under `prefix` (e.g. `vision_model.` or `language_model.`) from an earlier demo
 * checkpoint directory or a safetensors file, checked against the expected specs, so a run can reuse
 * a frozen encoder or LM instead of pre-training it again.
 * @throws TensorError naming a missing or mis-shaped tensor; DemoError `DEMO_OPTIONS` when the path
 *   cannot be opened
 */
export async function readFrozen(
  path: string,
  specs: readonly { readonly name: string; readonly shape: readonly number[] }[],
): Promise<Map<string, HostTensor>> {
  let checkpoint: Checkpoint;
  try {
    checkpoint = (await stat(path)).isDirectory()
      ? (await openCheckpointDir(path)).checkpoint
      : await openSafetensors(path);
  } catch (e) {
    throw new DemoError(
      'DEMO_OPTIONS',
      `cannot open ${path} to reuse frozen weights: ${(e as Error).message}`,
      { cause: e },
    );
  }
  try {
    const out = new Map<string, HostTensor>();
    for (const s of specs) {
      const info = checkpoint.info(s.name);
      if (!info)
        throw new TensorError('TENSOR_MISSING', s.name, `not found in ${path}`, fmtShape(s.shape), 'absent');
      if (info.shape.length !== s.shape.length || info.shape.some((d, i) => d !== s.shape[i]))
        throw new TensorError(
          'TENSOR_SHAPE',
          s.name,
          `wrong shape in ${path}`,
          fmtShape(s.shape),
          fmtShape(info.shape),
        );
      out.set(s.name, await checkpoint.read(s.name, { float32: true }));
    }
    return out;
  } finally {
    await checkpoint.close();
  }
}
