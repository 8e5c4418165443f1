import { type Ops, type ParamStore, languageProjection } from '@qf/core';
import type { LmParamSpec } from './lm/types.js';

/**
 * The projector: BLIP-2's `language_projection` linear layer (HF names `language_projection.weight`
 * [lmHidden, qformerHidden] and `language_projection.bias` [lmHidden]) maps the Q-Former's query
 * outputs to the soft prompt of the language model. The op itself lives in `@qf/core`
 * ({@link languageProjection}) and is re-exported here.
 */
export { languageProjection };

/** HF names of the projector's parameters. */
export const PROJECTOR_NAMES = {
  weight: 'language_projection.weight',
  bias: 'language_projection.bias',
} as const;

/** The projector's parameters (PyTorch shapes). */
export function projectorParamSpecs(qformerHiddenSize: number, lmHiddenSize: number): LmParamSpec[] {
  return [
    { name: PROJECTOR_NAMES.weight, shape: [lmHiddenSize, qformerHiddenSize] },
    { name: PROJECTOR_NAMES.bias, shape: [lmHiddenSize] },
  ];
}

/**
 * The soft prompt from a Q-Former output: `language_projection(qformerOutput[:, :queryLength])`.
 *
 * BLIP-2 passes the query outputs ([B, Q, H]) as they are. InstructBLIP's Q-Former also reads the
 * instruction tokens, so its output is [B, Q + T_instr, H]; HF keeps only the first Q rows
 * (`query_output[:, :query_tokens.size(1)]`) before projecting: pass `queryLength` = Q for that.
 * @param qformerOutput [B, Q (+ T_instr), H]
 * @returns [B, Q, lmHidden]
 */
export function softPromptFromQFormer<T>(
  ops: Ops<T>,
  params: ParamStore<T>,
  qformerOutput: T,
  queryLength?: number,
): T {
  const queries = queryLength === undefined ? qformerOutput : ops.slice(qformerOutput, 1, 0, queryLength);
  return languageProjection(ops, params, queries);
}
