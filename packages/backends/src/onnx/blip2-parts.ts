import {
  OptLanguageModel,
  T5_GRAPH_KEYS,
  type T5LanguageModel,
  blip2GraphKey,
  blip2QFormerProjectorGraph,
  optPrefillGraph,
  optStepGraph,
  t5DecoderGraph,
  t5EncoderGraph,
} from '@qf/bridge';
import {
  type GraphFn,
  type ParamStore,
  type QFormerModelSpec,
  visionGraph,
  visionGraphKey,
  visionShape,
} from '@qf/core';
import type { Blip2Config, HostTensor } from '@qf/io';
import type { Dim } from './proto.js';

/**
 * The graphs a whole BLIP-2 / InstructBLIP model is exported as, one file each:
 * - `vision`: the vision tower (`pixel_values` -> `vision_output`);
 * - `qformer_projector`: Q-Former + `language_projection` (`image_embeds` [+ the InstructBLIP
 *   instruction `qformer_input_ids` / `qformer_attention_mask`] -> `query_output`, `language_projection`,
 *   and for InstructBLIP the whole `qformer_output`);
 * - OPT (decoder-only LM): `lm_prefill` (soft prompt + prompt ids -> last-position logits and the KV
 *   cache), `lm_step` (one token per row + the cache -> logits and the grown cache);
 * - T5 (encoder-decoder LM): `t5_encoder` (soft prompt + prompt ids -> encoder states and every
 *   decoder block's cross-attention K/V), `t5_decoder_first` (decoder ids, no cache), `t5_decoder_step`
 *   (one id per row + the self-attention cache).
 */
export type Blip2OnnxPart =
  | 'vision'
  | 'qformer_projector'
  | 'lm_prefill'
  | 'lm_step'
  | 't5_encoder'
  | 't5_decoder_first'
  | 't5_decoder_step';

/** Groups of parts, as `qf export-onnx --part` names them: `lm` is every part of the language model. */
export type Blip2PartGroup = 'vision' | 'qformer_projector' | 'lm' | 'all';

/** Every group name. */
export const BLIP2_PART_GROUPS: readonly Blip2PartGroup[] = ['vision', 'qformer_projector', 'lm', 'all'];

/** The LM parts of each LM kind. */
export const BLIP2_LM_PARTS = {
  'decoder-only': ['lm_prefill', 'lm_step'],
  'encoder-decoder': ['t5_encoder', 't5_decoder_first', 't5_decoder_step'],
} as const satisfies Record<string, readonly Blip2OnnxPart[]>;

/** The options `qformer_projector` is recorded with: InstructBLIP reads the instruction and its mask. */
const projectorOptions = (instruct: boolean) => ({ instruct, qformerMask: true });

/**
 * The `backend.run` key each part is run under by the TS runtime (`OptDecodingSession`,
 * `T5DecodingSession`, `VisionModel`), so a backend reading the exported files can serve those calls.
 */
export const BLIP2_GRAPH_KEYS: Readonly<Record<Exclude<Blip2OnnxPart, 'qformer_projector'>, string>> = {
  vision: visionGraphKey(),
  lm_prefill: 'opt:prefill:st',
  lm_step: 'opt:step',
  t5_encoder: `${T5_GRAPH_KEYS.encoder}:st`,
  t5_decoder_first: T5_GRAPH_KEYS.decoderFirst,
  t5_decoder_step: T5_GRAPH_KEYS.decoderStep,
};

/** The key of the `qformer_projector` part (`blip2GraphKey` of `@qf/bridge`). */
export function qformerProjectorKey(instruct: boolean): string {
  return blip2GraphKey('qformer-projector', projectorOptions(instruct));
}

/**
 * What the exporter needs of a whole model (a `Blip2Model` of `@qf/bridge` has all of it): the
 * parsed config, the Q-Former as the model runs it, the LM, and one parameter store.
 */
export interface Blip2GraphSource<T> {
  readonly config: Blip2Config;
  readonly spec: QFormerModelSpec;
  readonly lm: OptLanguageModel | T5LanguageModel;
  /** Every tensor under its HF name: `vision_model.*`, the Q-Former's, `language_projection.*`, `language_model.*`. */
  readonly params: ParamStore<T>;
}

/** Input and output names with their documentation (dims use the axis names below). */
export const BLIP2_IO_DOCS: Readonly<Record<string, string>> = {
  pixel_values:
    'float32 [batch, 3, image_size, image_size]: preprocessed images (see manifest.preprocessing)',
  vision_output: 'float32 [batch, num_image_tokens, vision_hidden]: vision tower last_hidden_state',
  image_embeds: 'float32 [batch, num_image_tokens, vision_hidden]: the vision_output of the vision part',
  qformer_input_ids: 'int64 [batch, instruction_length]: InstructBLIP instruction ids (Q-Former tokenizer)',
  qformer_attention_mask: 'int64 [batch, instruction_length]: 1 = token, 0 = padding',
  query_output: 'float32 [batch, num_query_tokens, qformer_hidden]: Q-Former output of the query tokens',
  qformer_output:
    'float32 [batch, num_query_tokens + instruction_length, qformer_hidden]: InstructBLIP Q-Former output (queries and instruction)',
  language_projection: 'float32 [batch, num_query_tokens, lm_hidden]: the soft prompt of the LM',
  soft_prompt:
    'float32 [batch, num_query_tokens, lm_hidden]: language_projection of the qformer_projector part',
  lm_input_ids: 'int64 [batch, prompt_length]: LM prompt ids (no prompt: [[bos]] per row)',
  lm_attention_mask:
    'int64 [batch, length]: 1 = attend, 0 = padding, over [soft prompt ; prompt ; generated tokens]',
  position_ids: 'int64: OPT positions, cumsum(lm_attention_mask) - 1 with padding at 1 (HF generate)',
  logits: 'float32: next-token logits (OPT: of the last position, [batch, vocab])',
  attention_mask: 'int64 [batch, encoder_length]: T5 encoder mask over [soft prompt ; prompt]',
  encoder_last_hidden_state: 'float32 [batch, encoder_length, d_model]: T5 encoder output',
  decoder_input_ids: 'int64 [batch, decoder_length]: T5 decoder ids (first: decoder_start_token_id)',
  encoder_attention_mask: 'int64 [batch, encoder_length]: the attention_mask given to t5_encoder',
};

const KV_DOCS: readonly [RegExp, string][] = [
  [
    /^present_(key|value)\.\d+$/,
    'float32 [batch, heads, length, head_dim]: OPT self-attention cache after this call',
  ],
  [
    /^past_(key|value)\.\d+$/,
    'float32 [batch, heads, past_length, head_dim]: OPT cache from the previous call',
  ],
  [
    /^cross\.\d+\.(key|value)$/,
    'float32 [batch, heads, encoder_length, d_kv]: T5 cross-attention K/V of block i',
  ],
  [/^past\.\d+\.(key|value)$/, 'float32 [batch, heads, past_length, d_kv]: T5 self-attention cache'],
  [
    /^present\.\d+\.(key|value)$/,
    'float32 [batch, heads, length, d_kv]: T5 self-attention cache after this call',
  ],
];

/** The documentation of an input or output name of any part. */
export function blip2IoDoc(name: string): string | undefined {
  return BLIP2_IO_DOCS[name] ?? KV_DOCS.find(([re]) => re.test(name))?.[1];
}

/** One declared input or output: name, element type and dims (numbers or axis names). */
export interface IoDecl {
  readonly name: string;
  readonly dtype: 'float32' | 'int64';
  readonly dims: readonly Dim[];
}

/** One part ready to record: key, graph, dummy inputs to trace with, declared inputs and outputs. */
export interface PartPlan<T> {
  readonly part: Blip2OnnxPart;
  readonly key: string;
  readonly graph: GraphFn<T>;
  readonly dummy: Record<string, HostTensor>;
  readonly inputs: readonly IoDecl[];
  readonly outputs: readonly IoDecl[];
}

const f32 = (name: string, dims: readonly Dim[]): IoDecl => ({ name, dtype: 'float32', dims });
const i64 = (name: string, dims: readonly Dim[]): IoDecl => ({ name, dtype: 'int64', dims });

/** A zero (float) or one (int) host tensor to trace with; symbolic axes get small sizes. */
function dummyOf(io: IoDecl): HostTensor {
  const shape = io.dims.map((d) => (typeof d === 'number' ? d : 2));
  const n = shape.reduce((a, b) => a * b, 1);
  return io.dtype === 'float32'
    ? { dtype: 'F32', shape, data: new Float32Array(n) }
    : { dtype: 'I64', shape, data: new BigInt64Array(n).fill(1n) };
}

function kvNames(layers: number, name: (i: number, w: 'key' | 'value') => string): string[] {
  return Array.from({ length: layers }, (_, i) => [name(i, 'key'), name(i, 'value')]).flat();
}

/** Plans every part this model has, in export order. */
export function planBlip2Parts<T>(src: Blip2GraphSource<T>): PartPlan<T>[] {
  const vs = visionShape(src.config.vision);
  const tokens = vs.numPatches + 1;
  const spec = src.spec;
  const q = spec.numQueryTokens;
  const lmWidth = spec.languageProjection?.outFeatures ?? src.lm.shape.hiddenSize;
  const instruct = src.config.modelType === 'instructblip';
  const hidden = spec.qformer.hiddenSize;
  const plan = <P extends Omit<PartPlan<T>, 'dummy'>>(p: P): PartPlan<T> => ({
    ...p,
    dummy: Object.fromEntries(p.inputs.map((io) => [io.name, dummyOf(io)])),
  });
  const parts: PartPlan<T>[] = [
    plan({
      part: 'vision',
      key: BLIP2_GRAPH_KEYS.vision,
      graph: visionGraph(src.config.vision, src.params),
      inputs: [f32('pixel_values', ['batch', 3, vs.imageSize, vs.imageSize])],
      outputs: [f32('vision_output', ['batch', tokens, vs.hidden])],
    }),
    plan({
      part: 'qformer_projector',
      key: qformerProjectorKey(instruct),
      graph: blip2QFormerProjectorGraph(spec, src.params, projectorOptions(instruct)),
      inputs: [
        f32('image_embeds', ['batch', 'num_image_tokens', vs.hidden]),
        ...(instruct
          ? [
              i64('qformer_input_ids', ['batch', 'instruction_length']),
              i64('qformer_attention_mask', ['batch', 'instruction_length']),
            ]
          : []),
      ],
      outputs: [
        ...(instruct ? [f32('qformer_output', ['batch', `${q}+instruction_length`, hidden])] : []),
        f32('query_output', ['batch', q, hidden]),
        f32('language_projection', ['batch', q, lmWidth]),
      ],
    }),
  ];
  const { numLayers, numHeads, headDim, vocabSize } = src.lm.shape;
  if (src.lm instanceof OptLanguageModel) {
    const lm = src.lm;
    const kv = (name: string, len: Dim) => f32(name, ['batch', numHeads, len, headDim]);
    const present = (len: Dim) => kvNames(numLayers, (i, w) => `present_${w}.${i}`).map((n) => kv(n, len));
    parts.push(
      plan({
        part: 'lm_prefill',
        key: BLIP2_GRAPH_KEYS.lm_prefill,
        graph: optPrefillGraph(lm, src.params),
        inputs: [
          f32('soft_prompt', ['batch', q, lm.shape.hiddenSize]),
          i64('lm_input_ids', ['batch', 'prompt_length']),
          i64('lm_attention_mask', ['batch', `${q}+prompt_length`]),
          i64('position_ids', ['batch', `${q}+prompt_length`]),
        ],
        outputs: [f32('logits', ['batch', vocabSize]), ...present(`${q}+prompt_length`)],
      }),
      plan({
        part: 'lm_step',
        key: BLIP2_GRAPH_KEYS.lm_step,
        graph: optStepGraph(lm, src.params),
        inputs: [
          i64('lm_input_ids', ['batch', 1]),
          i64('lm_attention_mask', ['batch', 'past_length+1']),
          i64('position_ids', ['batch', 1]),
          ...kvNames(numLayers, (i, w) => `past_${w}.${i}`).map((n) => kv(n, 'past_length')),
        ],
        outputs: [f32('logits', ['batch', vocabSize]), ...present('past_length+1')],
      }),
    );
    return parts;
  }
  const lm = src.lm;
  const root = lm.root(src.params);
  const kv = (name: string, len: Dim) => f32(name, ['batch', numHeads, len, headDim]);
  const cross = kvNames(numLayers, (i, w) => `cross.${i}.${w}`).map((n) => kv(n, 'encoder_length'));
  const present = (len: Dim) => kvNames(numLayers, (i, w) => `present.${i}.${w}`).map((n) => kv(n, len));
  const decoderIn = [i64('encoder_attention_mask', ['batch', 'encoder_length']), ...cross];
  parts.push(
    plan({
      part: 't5_encoder',
      key: BLIP2_GRAPH_KEYS.t5_encoder,
      graph: t5EncoderGraph(lm.config, root),
      inputs: [
        f32('soft_prompt', ['batch', q, lm.config.dModel]),
        i64('lm_input_ids', ['batch', 'prompt_length']),
        i64('attention_mask', ['batch', 'encoder_length']),
      ],
      outputs: [f32('encoder_last_hidden_state', ['batch', 'encoder_length', lm.config.dModel]), ...cross],
    }),
    plan({
      part: 't5_decoder_first',
      key: BLIP2_GRAPH_KEYS.t5_decoder_first,
      graph: t5DecoderGraph(lm.config, root, false),
      inputs: [i64('decoder_input_ids', ['batch', 'decoder_length']), ...decoderIn],
      outputs: [f32('logits', ['batch', 'decoder_length', vocabSize]), ...present('decoder_length')],
    }),
    plan({
      part: 't5_decoder_step',
      key: BLIP2_GRAPH_KEYS.t5_decoder_step,
      graph: t5DecoderGraph(lm.config, root, true),
      inputs: [
        i64('decoder_input_ids', ['batch', 1]),
        ...decoderIn,
        ...kvNames(numLayers, (i, w) => `past.${i}.${w}`).map((n) => kv(n, 'past_length')),
      ],
      outputs: [f32('logits', ['batch', 1, vocabSize]), ...present('past_length+1')],
    }),
  );
  return parts;
}
