import { type PreprocessOptions, type RawImage, preprocessImages } from '@qf/core';
import { type HostTensor, toInt32 } from '@qf/io';
import type { TextTokenizer } from '../tokenizer.js';
import { Blip2Error } from './errors.js';
import type { Blip2GenerateOptions, Blip2GenerateResult } from './generation.js';
import type { Blip2Inputs } from './inputs.js';

/** Options of `Blip2Model.caption`: generation options plus the text side. */
export interface Blip2CaptionOptions extends Blip2GenerateOptions {
  /** The LM's tokenizer (`tokenizer.json` of the model directory); required to decode the captions. */
  readonly tokenizer?: TextTokenizer | undefined;
  /** InstructBLIP: the Q-Former's tokenizer (`qformer_tokenizer/`); required there. */
  readonly qformerTokenizer?: TextTokenizer | undefined;
  /**
   * The LM prompt, e.g. `"Question: what is shown? Answer:"`: one for every image, or one per image.
   * Omitted: BLIP-2 captions from `[bos]` alone.
   */
  readonly prompt?: string | readonly string[] | undefined;
  /** InstructBLIP: the Q-Former's instruction (default: the prompt, as `InstructBlipProcessor` does). */
  readonly instruction?: string | readonly string[] | undefined;
  /** Image preprocessing beyond `image_size` (mean, std, resample...); defaults are BLIP-2's. */
  readonly preprocess?: Omit<PreprocessOptions, 'imageSize'> | undefined;
}

/** One caption of `Blip2Model.captionDetailed`. */
export interface Blip2Caption {
  /** The decoded new tokens (special tokens skipped, trimmed). */
  readonly caption: string;
  /** The row of `generate`'s `sequences` (prompt or decoder start, new tokens, padding). */
  readonly ids: number[];
  /** The new tokens. */
  readonly generated: number[];
}

/** What caption needs from the model. */
export interface CaptionModel {
  readonly instruct: boolean;
  readonly imageSize: number;
  readonly lm: { readonly kind: 'decoder-only' | 'encoder-decoder' };
  generate(inputs: Blip2Inputs, options: Blip2GenerateOptions): Promise<Blip2GenerateResult>;
}

function perImage(what: string, v: string | readonly string[], n: number): readonly string[] {
  if (typeof v === 'string') return new Array<string>(n).fill(v);
  if (v.length !== n)
    throw new Blip2Error('BLIP2_BAD_OPTION', `${what}: expected one per image (${n}), got ${v.length}`);
  return v;
}

function rows(t: HostTensor<'I32'>): number[][] {
  const [b, n] = t.shape as [number, number];
  const d = toInt32(t, 'sequences');
  return Array.from({ length: b }, (_, r) => Array.from(d.subarray(r * n, (r + 1) * n)));
}

/** `Blip2Model.captionDetailed`: preprocess, tokenize, generate, decode. */
export async function captionImages(
  model: CaptionModel,
  images: readonly RawImage[],
  options: Blip2CaptionOptions,
): Promise<Blip2Caption[]> {
  const { tokenizer, qformerTokenizer, prompt, instruction, preprocess, ...generateOptions } = options;
  if (!tokenizer)
    throw new Blip2Error(
      'BLIP2_TOKENIZER_MISSING',
      "captioning needs the language model's tokenizer (tokenizer.json in the model directory), which is missing",
    );
  if (images.length === 0) throw new Blip2Error('BLIP2_BAD_OPTION', 'caption: no images given');
  const n = images.length;
  const inputs: { -readonly [K in keyof Blip2Inputs]: Blip2Inputs[K] } = {
    pixel_values: preprocessImages(images, { ...preprocess, imageSize: model.imageSize }),
  };
  if (prompt !== undefined) {
    const side = model.lm.kind === 'decoder-only' ? 'left' : 'right';
    const batch = tokenizer.encodeBatch(perImage('prompt', prompt, n), { paddingSide: side });
    inputs.input_ids = batch.input_ids;
    inputs.attention_mask = batch.attention_mask;
  }
  if (model.instruct) {
    const text = instruction ?? prompt;
    if (text === undefined)
      throw new Blip2Error(
        'BLIP2_INSTRUCTION_MISSING',
        "InstructBLIP's Q-Former needs an instruction: pass a prompt (or an instruction)",
      );
    if (!qformerTokenizer)
      throw new Blip2Error(
        'BLIP2_QFORMER_TOKENIZER_MISSING',
        "InstructBLIP needs the Q-Former's tokenizer (qformer_tokenizer/tokenizer.json in the model directory), which is missing",
      );
    const q = qformerTokenizer.encodeBatch(perImage('instruction', text, n), { paddingSide: 'right' });
    inputs.qformer_input_ids = q.input_ids;
    inputs.qformer_attention_mask = q.attention_mask;
  } else if (instruction !== undefined) {
    throw new Blip2Error(
      'BLIP2_BAD_OPTION',
      'instruction: only InstructBLIP reads an instruction; use prompt',
    );
  }
  const result = await model.generate(inputs, generateOptions);
  const full = rows(result.sequences);
  return rows(result.generated).map((generated, i) => ({
    caption: tokenizer.decode(generated, { skipSpecialTokens: true }).trim(),
    ids: full[i] as number[],
    generated,
  }));
}
