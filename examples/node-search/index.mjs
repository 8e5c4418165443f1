#!/usr/bin/env node
// Text-to-image search over a folder of images with a BLIP-2 checkpoint: `index` turns every image
// into Q-Former features (vision tower, then the query pass: ITC features, plus the image embeddings
// that ITM needs) and saves them; `search` ranks the index for a text with ITC (max over query
// tokens of the cosine similarity), then re-ranks the best with the ITM head. Public package APIs
// only (built packages: run `pnpm build` first).
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { extname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { TextTokenizer, loadTokenizer, wordLevelTokenizerFiles } from '@qf/bridge/node';
import { VisionModel, loadQFormer, preprocessImages } from '@qf/core';
import {
  decodeImageFile,
  detectCheckpointLayout,
  openCheckpointDir,
  openSafetensors,
  parseBlip2Config,
  toCanonicalName,
  toFloat32,
  writeSafetensorsFile,
} from '@qf/io/node';
import { shapesVocabulary } from '@qf/shapes';
import cliProgress from 'cli-progress';

const USAGE = `usage:
  node index.mjs index <image-folder> --model <dir> [--out index.safetensors] [--batch 16] [--backend wasm|cpu]
  node index.mjs search <index.safetensors> "<text>" --model <dir> [--top 10] [--rerank 20] [--json] [--backend wasm|cpu]`;
const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/** The Q-Former tokenizer: `qformer_tokenizer/` of the model directory, else the shapes vocabulary where it fits. */
async function qformerTokenizer(dir, config) {
  try {
    return await loadTokenizer(dir, 'qformer_tokenizer');
  } catch (e) {
    if (e?.code !== 'SOURCE_NOT_FOUND') throw e;
  }
  const q = shapesVocabulary().qformer;
  if (config.qformer.vocabSize !== q.tokens.length)
    throw new Error(`${dir}: no qformer_tokenizer/tokenizer.json for the Q-Former's text side`);
  const f = wordLevelTokenizerFiles(q.tokens, { pad: q.pad, unk: q.unk, bos: q.cls, eos: q.sep });
  return TextTokenizer.fromJson(f.tokenizer, f.config);
}

/** Vision tower + Q-Former (with its retrieval heads) of a whole BLIP-2 model directory. */
async function openModel(dir, backendName) {
  const backend = await createTfjsBackend(backendName);
  const { config: json, checkpoint } = await openCheckpointDir(dir);
  try {
    const config = parseBlip2Config(json);
    const layout = detectCheckpointLayout(checkpoint.names());
    const canonicalName = (n) => toCanonicalName(layout, n);
    const vision = await VisionModel.load(backend, checkpoint, config.vision, { canonicalName });
    const qformer = await loadQFormer(backend, checkpoint, json);
    if (!qformer.spec.retrievalHeads || !qformer.spec.textPath)
      throw new Error(
        `${dir}: the checkpoint has no Q-Former text path or retrieval heads (itm_head, projections)`,
      );
    const digest = createHash('sha256').update(JSON.stringify(json)).digest('hex').slice(0, 16);
    const dispose = () => {
      vision.dispose();
      qformer.dispose();
    };
    return { backend, config, vision, qformer, digest, dispose };
  } finally {
    await checkpoint.close();
  }
}

/** A bar on stderr (plain periodic lines when stderr is not a terminal). */
function progressBar(total, label) {
  const stream = process.stderr;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} |{bar}| {value}/{total} images | {rate} img/s | ETA {eta_formatted}`,
      hideCursor: true,
      noTTYOutput: !stream.isTTY,
      notTTYSchedule: 1000,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = performance.now();
  bar.start(total, 0, { rate: '-' });
  return {
    update: (n) => bar.update(n, { rate: (n / ((performance.now() - t0) / 1000)).toFixed(1) }),
    stop: () => bar.stop(),
  };
}

/** Concatenates [b, ...] float tensors along the batch. */
function concatRows(parts) {
  const [, ...rest] = parts[0].shape;
  const n = parts.reduce((a, t) => a + t.shape[0], 0);
  const data = new Float32Array(parts.reduce((a, t) => a + t.data.length, 0));
  let at = 0;
  for (const t of parts) {
    data.set(toFloat32(t), at);
    at += t.data.length;
  }
  return { dtype: 'F32', shape: [n, ...rest], data };
}

async function indexFolder(folder, opts) {
  const root = resolve(folder);
  const files = (await readdir(root, { recursive: true }))
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort();
  if (files.length === 0) throw new Error(`${root}: no PNG or JPEG images`);
  const model = await openModel(opts.model, opts.backend);
  const batch = Math.max(1, Number(opts.batch ?? 16));
  const feats = [];
  const embeds = [];
  const bar = progressBar(files.length, 'indexing');
  try {
    for (let i = 0; i < files.length; i += batch) {
      const names = files.slice(i, i + batch);
      const images = [];
      for (const f of names) images.push(await decodeImageFile(join(root, f)));
      const pixels = preprocessImages(images, { imageSize: model.config.vision.imageSize });
      const { vision_output } = await model.vision.run(pixels);
      const { imageFeats } = await model.qformer.extractFeatures(vision_output);
      feats.push(imageFeats);
      embeds.push(vision_output);
      bar.update(i + names.length);
    }
  } finally {
    bar.stop();
    model.dispose();
  }
  const out = resolve(opts.out ?? 'index.safetensors');
  await writeSafetensorsFile(
    out,
    { image_feats: concatRows(feats), image_embeds: concatRows(embeds) },
    { files: JSON.stringify(files), root, model: resolve(opts.model), model_config_sha256: model.digest },
  );
  const shown = relative(process.cwd(), out);
  console.log(`indexed ${files.length} images of ${root} -> ${shown.startsWith('..') ? out : shown}`);
}

/** Rows `idx` of a [M, ...] float tensor. */
function rows(t, idx) {
  const [, ...rest] = t.shape;
  const per = rest.reduce((a, v) => a * v, 1);
  const src = toFloat32(t);
  const data = new Float32Array(idx.length * per);
  idx.forEach((r, i) => {
    data.set(src.subarray(r * per, (r + 1) * per), i * per);
  });
  return { dtype: 'F32', shape: [idx.length, ...rest], data };
}

/** ITC: max over queries of image_feats[m, q] . text_feat (both L2-normalised by the model). */
function itc(imageFeats, textFeat) {
  const [m, q, d] = imageFeats.shape;
  const img = toFloat32(imageFeats);
  const txt = toFloat32(textFeat);
  return Array.from({ length: m }, (_, i) => {
    let best = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < q; k++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += img[(i * q + k) * d + e] * txt[e];
      best = Math.max(best, s);
    }
    return best;
  });
}

async function search(indexPath, text, opts) {
  const file = await openSafetensors(resolve(indexPath));
  const imageFeats = await file.read('image_feats');
  const imageEmbeds = await file.read('image_embeds');
  const meta = file.metadata;
  await file.close();
  const files = JSON.parse(meta.files ?? '[]');
  const model = await openModel(opts.model, opts.backend);
  try {
    if (meta.model_config_sha256 && meta.model_config_sha256 !== model.digest)
      console.error(`warning: ${indexPath} was built with another model (${meta.model})`);
    const tok = await qformerTokenizer(resolve(opts.model), model.config);
    const maxLength = model.config.qformer.maxPositionEmbeddings;
    const enc = tok.encodeBatch([text], { paddingSide: 'right', maxLength });
    const { textFeat } = await model.qformer.encodeText(enc.input_ids, enc.attention_mask);
    const scores = itc(imageFeats, textFeat);
    const byItc = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
    const r = Math.min(Math.max(0, Number(opts.rerank ?? 20)), byItc.length);
    const leaders = byItc.slice(0, r);
    let reranked = [];
    if (r > 0) {
      const ids = tok.encodeBatch(
        leaders.map(() => text),
        { paddingSide: 'right', maxLength },
      );
      const { itm } = await model.qformer.rerank(
        rows(imageEmbeds, leaders),
        ids.input_ids,
        ids.attention_mask,
      );
      const l = toFloat32(itm);
      reranked = leaders
        .map((index, k) => ({ index, itm: 1 / (1 + Math.exp(l[2 * k] - l[2 * k + 1])) }))
        .sort((a, b) => b.itm - a.itm);
    }
    const results = [...reranked, ...byItc.slice(r).map((index) => ({ index }))]
      .slice(0, Math.max(1, Number(opts.top ?? 10)))
      .map(({ index, itm }) => ({ file: files[index] ?? `#${index}`, index, itc: scores[index], itm }));
    if (opts.json) console.log(JSON.stringify({ text, reranked: r, results }, null, 2));
    else {
      console.log(`"${text}": ${scores.length} images, ITC ranking, top ${r} re-ranked by ITM`);
      for (const [k, x] of results.entries()) {
        const itm = x.itm === undefined ? '' : `  ITM p(match) ${x.itm.toFixed(4)}`;
        console.log(`${String(k + 1).padStart(3)}. ${x.file}  ITC ${x.itc.toFixed(4)}${itm}`);
      }
    }
  } finally {
    model.dispose();
  }
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string' },
    out: { type: 'string' },
    batch: { type: 'string' },
    top: { type: 'string' },
    rerank: { type: 'string' },
    backend: { type: 'string', default: 'wasm' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
const [cmd, a, b] = positionals;
if (values.help || !cmd) {
  console.log(USAGE);
  process.exit(values.help ? 0 : 2);
}
if (!values.model) {
  console.error(`--model <dir> is required\n${USAGE}`);
  process.exit(2);
}
if (!['wasm', 'cpu'].includes(values.backend)) {
  console.error(`--backend must be wasm or cpu\n${USAGE}`);
  process.exit(2);
}
try {
  if (cmd === 'index' && a) await indexFolder(a, values);
  else if (cmd === 'search' && a && b !== undefined) await search(a, b, values);
  else {
    console.error(USAGE);
    process.exit(2);
  }
} catch (e) {
  console.error(`error: ${e?.message ?? e}`);
  process.exit(1);
}
