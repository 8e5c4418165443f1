import { QfError } from '@qf/io';

/**
 * Codes of {@link Blip2Error}:
 * - `BLIP2_NOT_A_FULL_MODEL`: the checkpoint lacks a whole part (no `vision_model.*` or no
 *   `language_model.*` tensors, e.g. a Q-Former-only or retrieval checkpoint);
 * - `BLIP2_TOKENIZER_MISSING`: text in or out (`caption`) without the LM tokenizer;
 * - `BLIP2_QFORMER_TOKENIZER_MISSING`: InstructBLIP `caption` without the Q-Former tokenizer;
 * - `BLIP2_INSTRUCTION_MISSING`: InstructBLIP `caption` without a prompt (HF needs `qformer_input_ids`);
 * - `BLIP2_BAD_OPTION`: an option out of range (e.g. `maxNewTokens` 0, prompts not one per image);
 * - `BLIP2_DISPOSED`: the model was used after `dispose()`.
 */
export type Blip2ErrorCode =
  | 'BLIP2_NOT_A_FULL_MODEL'
  | 'BLIP2_TOKENIZER_MISSING'
  | 'BLIP2_QFORMER_TOKENIZER_MISSING'
  | 'BLIP2_INSTRUCTION_MISSING'
  | 'BLIP2_BAD_OPTION'
  | 'BLIP2_DISPOSED';

/** A misuse of a whole BLIP-2 / InstructBLIP model (bad tensors are `TensorError`, bad configs `ConfigError`). */
export class Blip2Error extends QfError {
  // biome-ignore lint/complexity/noUselessConstructor: narrows `code` to the BLIP-2 codes.
  constructor(code: Blip2ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}
