import { OptLanguageModel } from '@qf/bridge';
import { type Backend, CLIP_MEAN, CLIP_STD, visionShape } from '@qf/core';
import { OnnxBackend } from './backend.js';
import {
  BLIP2_LM_PARTS,
  type Blip2GraphSource,
  type Blip2OnnxPart,
  type Blip2PartGroup,
  type IoDecl,
  blip2IoDoc,
  planBlip2Parts,
} from './blip2-parts.js';
import { type BuiltGraph, buildGraph } from './build.js';
import { OnnxBackendError } from './errors.js';
import type { Sym } from './trace.js';
import { DataType } from './proto.js';
import type { WeightFormat } from './weights.js';

/**
 * A whole BLIP-2 / InstructBLIP model on an {@link OnnxBackend}: a `Blip2Model<Sym>` of `@qf/bridge`
 * (`Blip2Model.load(createOnnxBackend({}), checkpoint, config)`) is one.
 */
export interface Blip2OnnxSource extends Blip2GraphSource<Sym> {
  /** The backend that made `params`: an OnnxBackend (used only to record; no session is created). */
  readonly backend: Backend<Sym>;
}

/** Weight storage of a whole-model export. */
export type Blip2WeightFormat = Exclude<WeightFormat, 'int8'>;

/** Options of {@link exportBlip2Graphs}. */
export interface Blip2ExportOptions {
  /** Parts or groups (`lm` = every LM part, `all` = everything); default `all`. */
  readonly parts?: readonly (Blip2OnnxPart | Blip2PartGroup)[];
  /**
   * Weight storage (default `float32`; `float16` halves the files, compute stays float32). The
   * Q-Former-only export's `int8` is not offered here (not validated on these graphs).
   */
  readonly weights?: Blip2WeightFormat;
  /** Fuse Q/K/V linears into one MatMul (default true). */
  readonly fuseLinears?: boolean;
}

/** An input or output of an exported part, with its documentation. */
export interface Blip2Io {
  readonly name: string;
  readonly dtype: 'float32' | 'int64';
  readonly dims: readonly (number | string | null)[];
  readonly doc?: string | undefined;
}

/** One exported graph and its contract. */
export interface Blip2ExportedPart {
  readonly part: Blip2OnnxPart;
  /** `blip2_<part>.onnx`. */
  readonly fileName: string;
  /** The `backend.run` key the TS runtime runs this graph under. */
  readonly graphKey: string;
  readonly graph: BuiltGraph;
  readonly inputs: readonly Blip2Io[];
  readonly outputs: readonly Blip2Io[];
}

/** The `manifest.json` written next to the files: enough to run captioning without the TS model code. */
export interface Blip2OnnxManifest {
  readonly format: 'qformer-ts-blip2-onnx/1';
  readonly modelType: 'blip-2' | 'instructblip';
  readonly weights: Blip2WeightFormat;
  /** The HF `config.json` of the model (a runtime rebuilds the LM's host side and generation defaults from it). */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  readonly config: {
    readonly vision: {
      imageSize: number;
      patchSize: number;
      hiddenSize: number;
      numHiddenLayers: number;
      numImageTokens: number;
    };
    readonly qformer: {
      numQueryTokens: number;
      hiddenSize: number;
      numHiddenLayers: number;
      instruction: boolean;
    };
    readonly lm: {
      kind: 'decoder-only' | 'encoder-decoder';
      modelType: string;
      vocabSize: number;
      hiddenSize: number;
      numLayers: number;
      numHeads: number;
      headDim: number;
    };
  };
  /** HF `BlipImageProcessor`: resize to imageSize (bicubic), x/255, (x - mean) / std, CHW. */
  readonly preprocessing: {
    imageSize: number;
    resample: 'bicubic';
    rescaleFactor: number;
    mean: readonly number[];
    std: readonly number[];
  };
  readonly specialTokens: {
    bos?: number | undefined;
    /** Every EOS id (OPT configs may list several). */
    eos: readonly number[];
    pad?: number | undefined;
    decoderStart?: number | undefined;
  };
  readonly parts: readonly {
    readonly part: Blip2OnnxPart;
    readonly file: string;
    readonly externalData?: string | undefined;
    readonly graphKey: string;
    readonly inputs: readonly Blip2Io[];
    readonly outputs: readonly Blip2Io[];
  }[];
}

/** The parts of `src`, in export order, that `wanted` (parts or groups) selects. */
export function resolveBlip2Parts(
  src: Pick<Blip2GraphSource<unknown>, 'lm'>,
  wanted: readonly (Blip2OnnxPart | Blip2PartGroup)[] = ['all'],
): Blip2OnnxPart[] {
  const lmParts: readonly Blip2OnnxPart[] = BLIP2_LM_PARTS[src.lm.kind];
  const all: Blip2OnnxPart[] = ['vision', 'qformer_projector', ...lmParts];
  const chosen = new Set<Blip2OnnxPart>();
  for (const w of wanted) {
    if (w === 'all') for (const p of all) chosen.add(p);
    else if (w === 'lm') for (const p of lmParts) chosen.add(p);
    else if (all.includes(w)) chosen.add(w);
    else
      throw new OnnxBackendError(
        'ONNX_EXPORT',
        `part "${w}" does not exist here: the language model is ${src.lm.kind} (parts: ${all.join(', ')}; groups: lm, all)`,
      );
  }
  return all.filter((p) => chosen.has(p));
}

const elemCode = (d: IoDecl['dtype']) => (d === 'float32' ? DataType.FLOAT : DataType.INT64);

/** Puts the declared names, dims and docs on a built graph, checking they match what was recorded. */
function declare(
  graph: BuiltGraph,
  part: Blip2OnnxPart,
  inputs: readonly IoDecl[],
  outputs: readonly IoDecl[],
): BuiltGraph {
  const apply = (kind: string, got: BuiltGraph['inputs'], want: readonly IoDecl[]) => {
    const names = got.map((g) => g.name).sort();
    const expected = want.map((w) => w.name).sort();
    if (names.join() !== expected.join())
      throw new OnnxBackendError(
        'ONNX_EXPORT',
        `part "${part}": recorded ${kind} [${names.join(', ')}] differ from the declared [${expected.join(', ')}]`,
      );
    return want.map((w) => {
      const g = got.find((x) => x.name === w.name);
      if (g?.elemType !== elemCode(w.dtype))
        throw new OnnxBackendError(
          'ONNX_EXPORT',
          `part "${part}": ${kind.slice(0, -1)} "${w.name}" is not ${w.dtype}`,
        );
      return { name: w.name, elemType: g.elemType, dims: w.dims, doc: blip2IoDoc(w.name) };
    });
  };
  return {
    ...graph,
    inputs: apply('inputs', graph.inputs, inputs),
    outputs: apply('outputs', graph.outputs, outputs),
  };
}

/**
 * Records a whole BLIP-2 / InstructBLIP model as one ONNX graph per part (see `Blip2OnnxPart`),
 * through `OnnxBackend.recordRuns` and the same graph functions the TS runtime runs
 * (`visionGraph`, `blip2QFormerProjectorGraph`, `optPrefillGraph` / `optStepGraph`, `t5EncoderGraph` /
 * `t5DecoderGraph`), so an exported file computes exactly what `backend.run` computes under its key.
 * Browser-safe; write files with `writeBlip2Onnx` (`@qf/backends/onnx/node`).
 * @throws OnnxBackendError `ONNX_EXPORT` for an unknown part or a recording that differs from the
 *   declared inputs/outputs.
 */
export async function exportBlip2Graphs(
  src: Blip2OnnxSource,
  options: Blip2ExportOptions = {},
): Promise<Blip2ExportedPart[]> {
  const backend = src.backend;
  if (!(backend instanceof OnnxBackend))
    throw new OnnxBackendError('ONNX_EXPORT', 'export needs a model loaded on an OnnxBackend');
  const wanted = new Set(resolveBlip2Parts(src, options.parts));
  const weights = options.weights ?? 'float32';
  const out: Blip2ExportedPart[] = [];
  for (const plan of planBlip2Parts(src)) {
    if (!wanted.has(plan.part)) continue;
    const [rec] = await backend.recordRuns(() => backend.run(plan.key, plan.graph, plan.dummy));
    if (!rec) throw new OnnxBackendError('ONNX_EXPORT', `recording part "${plan.part}" produced no graph`);
    const names = plan.outputs.map((o) => o.name);
    const ordered = {
      trace: rec.trace,
      outputs: Object.fromEntries(names.map((n) => [n, rec.outputs[n] as Sym])),
    };
    const built = buildGraph(ordered, {
      outputs: names,
      weights,
      fuseLinears: options.fuseLinears ?? true,
      graphName: `blip2_${plan.part}`,
      doc: `${src.config.modelType === 'instructblip' ? 'InstructBLIP' : 'BLIP-2'} ${plan.part}, exported by qformer-ts`,
      metadata: { part: plan.part, graph_key: plan.key, weights, model_type: src.config.modelType },
    });
    const graph = declare(built, plan.part, plan.inputs, plan.outputs);
    const io = (v: BuiltGraph['inputs'][number], d: IoDecl): Blip2Io => ({
      name: v.name,
      dtype: d.dtype,
      dims: v.dims,
      doc: v.doc,
    });
    out.push({
      part: plan.part,
      fileName: `blip2_${plan.part}.onnx`,
      graphKey: plan.key,
      graph,
      inputs: graph.inputs.map((v, i) => io(v, plan.inputs[i] as IoDecl)),
      outputs: graph.outputs.map((v, i) => io(v, plan.outputs[i] as IoDecl)),
    });
  }
  return out;
}

/** The manifest of an export (`files`: the data file name of each part written with external data). */
export function blip2Manifest(
  src: Omit<Blip2GraphSource<unknown>, 'params'>,
  parts: readonly Blip2ExportedPart[],
  weights: Blip2WeightFormat,
  externalData: Readonly<Record<string, string | undefined>> = {},
): Blip2OnnxManifest {
  const vs = visionShape(src.config.vision);
  const { shape, tokens } = src.lm;
  const eos =
    src.lm instanceof OptLanguageModel
      ? src.lm.config.eosTokenIds
      : tokens.eos === undefined
        ? []
        : [tokens.eos];
  return {
    format: 'qformer-ts-blip2-onnx/1',
    modelType: src.config.modelType,
    weights,
    hfConfig: src.config.raw,
    config: {
      vision: {
        imageSize: vs.imageSize,
        patchSize: vs.patchSize,
        hiddenSize: vs.hidden,
        numHiddenLayers: src.config.vision.numHiddenLayers,
        numImageTokens: vs.numPatches + 1,
      },
      qformer: {
        numQueryTokens: src.spec.numQueryTokens,
        hiddenSize: src.spec.qformer.hiddenSize,
        numHiddenLayers: src.spec.qformer.numHiddenLayers,
        instruction: src.config.modelType === 'instructblip',
      },
      lm: {
        kind: src.lm.kind,
        modelType: src.lm instanceof OptLanguageModel ? 'opt' : src.lm.modelType,
        vocabSize: shape.vocabSize,
        hiddenSize: shape.hiddenSize,
        numLayers: shape.numLayers,
        numHeads: shape.numHeads,
        headDim: shape.headDim,
      },
    },
    preprocessing: {
      imageSize: vs.imageSize,
      resample: 'bicubic',
      rescaleFactor: 1 / 255,
      mean: [...CLIP_MEAN],
      std: [...CLIP_STD],
    },
    specialTokens: { bos: tokens.bos, eos: [...eos], pad: tokens.pad, decoderStart: tokens.decoderStart },
    parts: parts.map((p) => ({
      part: p.part,
      file: p.fileName,
      externalData: externalData[p.part],
      graphKey: p.graphKey,
      inputs: p.inputs,
      outputs: p.outputs,
    })),
  };
}
