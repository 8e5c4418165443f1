import type { Blip2Inputs } from '@qf/bridge';
import { loadBlip2FromDir } from '@qf/bridge/node';
import type { Backend } from '@qf/core';
import { type HostTensor, isFloatDType, toInt32 } from '@qf/io';
import { asF32 } from './tensors.js';

/** Inputs `qf run` passes to a whole BLIP-2 / InstructBLIP model. */
export const BLIP2_RUN_INPUTS = [
  'pixel_values',
  'input_ids',
  'attention_mask',
  'qformer_input_ids',
  'qformer_attention_mask',
  'labels',
  'decoder_input_ids',
] as const;

/** Options of {@link runBlip2}. */
export interface RunBlip2Options {
  readonly strict?: boolean | undefined;
  readonly hiddenStates?: boolean | undefined;
  /** Also generate this many new tokens (greedy) and write `generated_ids`. */
  readonly generate?: number | undefined;
}

/** An output as `qf run` writes it: floats as F32, token ids and masks as I64. */
export function asWritten(t: HostTensor): HostTensor<'F32' | 'I64'> {
  if (isFloatDType(t.dtype)) return asF32(t);
  if (t.dtype === 'I64') return t as HostTensor<'I64'>;
  const v = toInt32(t, 'output');
  return { dtype: 'I64', shape: [...t.shape], data: BigInt64Array.from(v, (x) => BigInt(x)) };
}

/**
 * `qf run` on a whole model: `forward` from `pixel_values` (every output: `vision_output`,
 * `query_output`, `language_projection`, InstructBLIP's `qformer_output`, `inputs_embeds`,
 * `lm_attention_mask`, `logits`, `loss`, T5's `encoder_last_hidden_state`...), plus
 * `generated_ids` (HF `generate`'s sequences) with `generate`.
 */
export async function runBlip2<T>(
  backend: Backend<T>,
  dir: string,
  inputs: Record<string, HostTensor>,
  options: RunBlip2Options,
): Promise<{ raw: Record<string, HostTensor>; ignored: readonly string[]; loadMs: number; runMs: number }> {
  const t0 = performance.now();
  const { model } = await loadBlip2FromDir(backend, dir, { strict: options.strict ?? false });
  const t1 = performance.now();
  try {
    const given = inputs as unknown as Blip2Inputs;
    const out = await model.forward(given, { hiddenStates: options.hiddenStates ?? false });
    const raw: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(out)) if (t) raw[name] = t;
    if (options.generate !== undefined) {
      const { labels: _labels, decoder_input_ids: _decoder, ...prompt } = given;
      const res = await model.generate(prompt, { maxNewTokens: options.generate });
      raw['generated_ids'] = res.sequences;
    }
    return { raw, ignored: model.ignored, loadMs: t1 - t0, runMs: performance.now() - t1 };
  } finally {
    model.dispose();
  }
}
