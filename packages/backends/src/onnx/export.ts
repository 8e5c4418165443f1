import type { QFormerModel } from '@qf/core';
import type { HostTensor } from '@qf/io';
import { OnnxBackend } from './backend.js';
import { type BuiltGraph, buildGraph } from './build.js';
import { OnnxBackendError } from './errors.js';
import type { Dim } from './proto.js';
import type { Sym } from './trace.js';
import type { WeightFormat } from './weights.js';

/**
 * The parts a Q-Former is exported as:
 * - `query`: `image_embeds` [+ `image_attention_mask`] -> `query_output`, `image_feats`,
 *   `language_projection` (the heads where the model has them);
 * - `text`: `input_ids`, `attention_mask` -> `text_output`, `text_feat`;
 * - `multimodal`: all inputs -> `multimodal_output`, `itm_logits`, `itc_logits`;
 * - `full`: all inputs -> every output above;
 * - `rerank`: one image (`image_embeds` [1, N, E], batch fixed to 1) [+ `image_attention_mask` [1, N]]
 *   against `num_texts` texts (`input_ids`, `attention_mask` [num_texts, text_length]) ->
 *   `itm_logits` [num_texts, 2], `multimodal_output` [num_texts, Q + text_length, H]: the ITM pass of
 *   `QFormerModel.rerank`, the image's cross-attention keys/values computed once for every text.
 *   Needs the text path and the retrieval heads.
 */
export type QFormerPart = 'query' | 'text' | 'multimodal' | 'full' | 'rerank';

/** Every part, in export order. */
export const QFORMER_PARTS: readonly QFormerPart[] = ['query', 'text', 'multimodal', 'full', 'rerank'];

/** The dynamic text-batch axis of the `rerank` part (the image batch is fixed to 1). */
export const RERANK_TEXT_AXIS = 'num_texts';

/** Options of {@link exportQFormerGraphs}. */
export interface ExportOptions {
  /** Parts to export (default: every part the model supports). */
  readonly parts?: readonly QFormerPart[];
  /** Weight storage (default `float32`; `float16` halves the files; `int8` is ONNX Runtime only). */
  readonly weights?: WeightFormat;
  /** Give image-reading parts an `image_attention_mask` input (default false: all image tokens real). */
  readonly imageMask?: boolean;
  /** Fuse Q/K/V linears into one MatMul (default true). */
  readonly fuseLinears?: boolean;
}

/** Documentation of every graph input and output (names are stable; dims use these symbols). */
export const IO_DOCS: Readonly<Record<string, string>> = {
  image_embeds: 'float32 [batch, num_image_tokens, encoder_hidden_size]: image encoder features',
  image_attention_mask: 'int64 [batch, num_image_tokens]: 1 = real image token, 0 = padding',
  input_ids: 'int64 [batch, text_length]: token ids (BERT tokenizer)',
  attention_mask: 'int64 [batch, text_length]: 1 = real token, 0 = padding',
  query_output: 'float32 [batch, num_query_tokens, hidden_size]: Q-Former output of the query tokens',
  image_feats: 'float32 [batch, num_query_tokens, image_text_hidden_size]: normalized ITC image features',
  language_projection:
    'float32 [batch, num_query_tokens, lm_hidden_size]: soft prompt for the language model',
  text_output: 'float32 [batch, text_length, hidden_size]: Q-Former output of the text-only pass',
  text_feat: 'float32 [batch, image_text_hidden_size]: normalized ITC text feature ([CLS] row)',
  multimodal_output: 'float32 [batch, num_query_tokens + text_length, hidden_size]: ITM pass output',
  itm_logits: 'float32 [batch, 2]: ITM logits of image b with text b (index 1 = match)',
  itc_logits: 'float32 [batch, batch]: ITC similarity, image i (rows) vs text j (columns)',
};

/** Doc strings of the `rerank` part, where they differ from {@link IO_DOCS}. */
const RERANK_IO_DOCS: Readonly<Record<string, string>> = {
  image_embeds:
    'float32 [1, num_image_tokens, encoder_hidden_size]: features of the one image scored against every text',
  image_attention_mask: 'int64 [1, num_image_tokens]: 1 = real image token, 0 = padding',
  input_ids: 'int64 [num_texts, text_length]: token ids (BERT tokenizer), one row per candidate text',
  attention_mask: 'int64 [num_texts, text_length]: 1 = real token, 0 = padding',
  itm_logits: 'float32 [num_texts, 2]: ITM logits of the image with text t (index 1 = match)',
  multimodal_output:
    'float32 [num_texts, num_query_tokens + text_length, hidden_size]: ITM pass output per text',
};

/** One exported part: its graph (payloads still lazy) and its input/output contract. */
export interface ExportedPart {
  readonly part: QFormerPart;
  /** Suggested file name, e.g. `qformer_query.onnx`. */
  readonly fileName: string;
  readonly graph: BuiltGraph;
  readonly inputs: readonly {
    readonly name: string;
    readonly dtype: string;
    readonly dims: readonly Dim[];
  }[];
  readonly outputs: readonly {
    readonly name: string;
    readonly dtype: string;
    readonly dims: readonly Dim[];
  }[];
}

const dtypeName = (code: number) => (code === 1 ? 'float32' : code === 7 ? 'int64' : String(code));

function dummyInputs(
  model: QFormerModel<Sym>,
  part: QFormerPart,
  imageMask: boolean,
): Record<string, HostTensor> {
  const e = model.spec.qformer.encoderHiddenSize;
  const image: Record<string, HostTensor> = {
    image_embeds: { dtype: 'F32', shape: [1, 1, e], data: new Float32Array(e) },
  };
  const mask: Record<string, HostTensor> = imageMask
    ? { image_attention_mask: { dtype: 'I64', shape: [1, 1], data: BigInt64Array.of(1n) } }
    : {};
  // rerank: two texts against one image, so the image (and its mask) is traced with a static batch 1.
  const texts = part === 'rerank' ? 2 : 1;
  const text: Record<string, HostTensor> = {
    input_ids: { dtype: 'I64', shape: [texts, 1], data: new BigInt64Array(texts) },
    attention_mask: { dtype: 'I64', shape: [texts, 1], data: new BigInt64Array(texts).fill(1n) },
  };
  if (part === 'query') return { ...image, ...mask };
  if (part === 'text') return text;
  return { ...image, ...mask, ...text };
}

function partOutputs(model: QFormerModel<Sym>, part: QFormerPart): string[] | undefined {
  switch (part) {
    case 'query':
      return ['query_output', 'image_feats', 'language_projection'];
    case 'text':
      return ['text_output', 'text_feat'];
    case 'multimodal':
      return model.spec.retrievalHeads
        ? ['multimodal_output', 'itm_logits', 'itc_logits']
        : ['multimodal_output'];
    case 'full':
      return undefined;
    case 'rerank':
      return ['itm_logits', 'multimodal_output'];
  }
}

/**
 * The parts a model supports: text-reading parts need the Q-Former text path, `rerank` also the
 * retrieval heads (`itm_head`).
 */
export function supportedParts(model: QFormerModel<Sym>): QFormerPart[] {
  if (!model.spec.textPath) return ['query'];
  return QFORMER_PARTS.filter((p) => p !== 'rerank' || model.spec.retrievalHeads !== undefined);
}

/** What a part needs beyond the query path, for error messages. */
function partNeeds(model: QFormerModel<Sym>, part: QFormerPart): string {
  return part === 'rerank' && model.spec.textPath
    ? 'the retrieval heads (itm_head, vision/text projections)'
    : 'the Q-Former text path';
}

/** Renames the `batch` axis of the `rerank` part's inputs and outputs to {@link RERANK_TEXT_AXIS}. */
function renameBatchAxis(graph: BuiltGraph): BuiltGraph {
  const dims = (d: readonly Dim[]) => d.map((x) => (x === 'batch' ? RERANK_TEXT_AXIS : x));
  return {
    ...graph,
    inputs: graph.inputs.map((i) => ({ ...i, dims: dims(i.dims) })),
    outputs: graph.outputs.map((o) => ({ ...o, dims: dims(o.dims) })),
  };
}

/**
 * Records the Q-Former of `model` (loaded on an {@link OnnxBackend}) as one ONNX graph per part,
 * through the same `QFormerModel.run` code path the backend runs. Browser-safe: encode the result
 * with `encodeInline` / `encodeExternal`, or write files with `writeQFormerOnnx` (`@qf/backends/onnx/node`).
 * The `rerank` part is recorded from `model.run(inputs, { itmOnly: true })` with one image against
 * several texts: the graph `QFormerModel.rerank` runs, the image input with a static batch 1.
 * @throws OnnxBackendError `ONNX_EXPORT` when a part needs a text path (or, for `rerank`, retrieval
 * heads) the model lacks.
 */
export async function exportQFormerGraphs(
  model: QFormerModel<Sym>,
  options: ExportOptions = {},
): Promise<ExportedPart[]> {
  const backend = model.backend;
  if (!(backend instanceof OnnxBackend))
    throw new OnnxBackendError('ONNX_EXPORT', 'export needs a model loaded on an OnnxBackend');
  const supported = supportedParts(model);
  const parts = options.parts ?? supported;
  const out: ExportedPart[] = [];
  for (const part of parts) {
    if (!supported.includes(part)) {
      throw new OnnxBackendError(
        'ONNX_EXPORT',
        `part "${part}" needs ${partNeeds(model, part)}, which this checkpoint lacks (supported: ${supported.join(', ')})`,
      );
    }
    const rerank = part === 'rerank';
    const inputs = dummyInputs(model, part, options.imageMask ?? false);
    const [recorded] = await backend.recordRuns(() => model.run(inputs, rerank ? { itmOnly: true } : {}));
    if (!recorded) throw new OnnxBackendError('ONNX_EXPORT', `recording part "${part}" produced no graph`);
    const wanted = partOutputs(model, part)?.filter((o) => o in recorded.outputs);
    // Graph outputs follow the recording's order; rerank lists them in `partOutputs` order instead.
    const rec =
      rerank && wanted
        ? {
            trace: recorded.trace,
            outputs: Object.fromEntries(wanted.map((o) => [o, recorded.outputs[o] as Sym])),
          }
        : recorded;
    const built = buildGraph(rec, {
      outputs: wanted,
      weights: options.weights ?? 'float32',
      fuseLinears: options.fuseLinears ?? true,
      graphName: `qformer_${part}`,
      doc: `BLIP-2 Q-Former, ${part} part, exported by qformer-ts`,
      docs: rerank ? { ...IO_DOCS, ...RERANK_IO_DOCS } : IO_DOCS,
      metadata: {
        part,
        weights: options.weights ?? 'float32',
        num_query_tokens: String(model.spec.numQueryTokens),
        hidden_size: String(model.spec.qformer.hiddenSize),
      },
    });
    const graph = rerank ? renameBatchAxis(built) : built;
    out.push({
      part,
      fileName: `qformer_${part}.onnx`,
      graph,
      inputs: graph.inputs.map((i) => ({ name: i.name, dtype: dtypeName(i.elemType), dims: i.dims })),
      outputs: graph.outputs.map((o) => ({ name: o.name, dtype: dtypeName(o.elemType), dims: o.dims })),
    });
  }
  return out;
}
