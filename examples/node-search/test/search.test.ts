import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { loadTokenizer } from '@qf/bridge/node';
import { VisionModel, preprocessImages } from '@qf/core';
import { loadQFormerFromDir } from '@qf/core/node';
import { type HostTensor, parseBlip2Config, toFloat32 } from '@qf/io';
import { openCheckpointDir } from '@qf/io/node';
import { type ShapeExample, generateShapes, writePng } from '@qf/shapes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFixtureCheckpoint } from '../../browser/tools/fixture-checkpoint.js';

/**
 * `index` + `search` end to end on a folder of generated shapes PNGs. Always: the CLI's ITC and ITM
 * numbers and order agree with `QFormerModel.score` computed here on the same images (tfjs-cpu in
 * both, so only float32 summation order differs: 1e-5). With the trained `qf demo` checkpoint
 * (examples/browser/public/checkpoint): each image's own caption finds it.
 */
const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));
const trained = join(exampleDir, '../browser/public/checkpoint');
const haveTrained = existsSync(join(trained, 'config.json'));
const COUNT = 10;

interface SearchOutput {
  readonly reranked: number;
  readonly results: { file: string; index: number; itc: number; itm?: number }[];
}

describe('examples/node-search', () => {
  let tmp: string;
  let model: string;
  let images: ShapeExample[];
  const index = () => join(tmp, 'index.safetensors');
  const search = async (text: string, extra: string[] = []): Promise<SearchOutput> => {
    const args = [
      'index.mjs',
      'search',
      index(),
      text,
      '--model',
      model,
      '--backend',
      'cpu',
      '--json',
      ...extra,
    ];
    const { stdout } = await run(process.execPath, args, { cwd: exampleDir });
    return JSON.parse(stdout);
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'qf-node-search-'));
    model = haveTrained ? trained : await writeFixtureCheckpoint(join(tmp, 'model'));
    const opened = await openCheckpointDir(model);
    await opened.checkpoint.close();
    const size = parseBlip2Config(opened.config).vision.imageSize;
    images = generateShapes({
      seed: 11,
      imageSize: size,
      counts: { train: 0, validation: 0, test: COUNT },
    }).test;
    await mkdir(join(tmp, 'images/sub'), { recursive: true });
    for (const [i, ex] of images.entries())
      await writeFile(join(tmp, i % 2 ? 'images/sub' : 'images', `shape-${i}.png`), writePng(ex.image));
    const { stdout, stderr } = await run(
      process.execPath,
      [
        'index.mjs',
        'index',
        join(tmp, 'images'),
        '--model',
        model,
        '--out',
        index(),
        '--backend',
        'cpu',
        '--batch',
        '4',
      ],
      { cwd: exampleDir },
    );
    expect(stdout).toMatch(new RegExp(`indexed ${COUNT} images`));
    expect(stderr).toMatch(new RegExp(`indexing \\|.*\\| ${COUNT}/${COUNT} images`));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** Index row of image i (files are sorted by path: images/shape-*.png, then images/sub/...). */
  const fileOf = (i: number) => (i % 2 ? `sub/shape-${i}.png` : `shape-${i}.png`);

  it('ranks by ITC, re-ranks the leaders by ITM, as QFormerModel.score does', async () => {
    const text = images[3]!.caption;
    const out = await search(text, ['--top', String(COUNT), '--rerank', '4']);
    expect(out.reranked).toBe(4);
    expect(out.results).toHaveLength(COUNT);

    const backend = await createTfjsBackend('cpu');
    const { config, checkpoint } = await openCheckpointDir(model);
    const vision = await VisionModel.load(backend, checkpoint, parseBlip2Config(config).vision);
    await checkpoint.close();
    const qformer = await loadQFormerFromDir(backend, model);
    const tok = await loadTokenizer(model, 'qformer_tokenizer').catch(() => undefined);
    expect(tok, 'the test checkpoints carry qformer_tokenizer/').toBeDefined();
    const pixels = preprocessImages(
      images.map((e) => e.image),
      { imageSize: vision.config.imageSize },
    );
    const embeds = (await vision.run(pixels)).vision_output;
    const enc = tok!.encodeBatch(
      images.map(() => text),
      { paddingSide: 'right' },
    );
    // image i with the text (every text is the same): itc [M, M] column 0, itm [M, 2] row i
    const { itc, itm } = await qformer.score(embeds, enc.input_ids, enc.attention_mask);
    vision.dispose();
    qformer.dispose();
    const itcOf = (i: number) => toFloat32(itc)[i * COUNT]!;
    const l = toFloat32(itm as HostTensor);
    const itmOf = (i: number) => 1 / (1 + Math.exp(l[2 * i]! - l[2 * i + 1]!));

    const byFile = new Map(images.map((_, i) => [fileOf(i), i]));
    for (const r of out.results) {
      const i = byFile.get(r.file)!;
      expect(r.itc, r.file).toBeCloseTo(itcOf(i), 5);
      if (r.itm !== undefined) expect(r.itm, r.file).toBeCloseTo(itmOf(i), 5);
    }
    const leaders = out.results.slice(0, 4);
    const rest = out.results.slice(4);
    // the re-ranked 4 are the ITC top 4, ordered by ITM; the rest follow in ITC order
    const itcTop = [...images.keys()].sort((a, b) => itcOf(b) - itcOf(a)).slice(0, 4);
    expect(new Set(leaders.map((r) => byFile.get(r.file)))).toEqual(new Set(itcTop));
    for (let k = 0; k + 1 < leaders.length; k++)
      expect(leaders[k]!.itm!).toBeGreaterThanOrEqual(leaders[k + 1]!.itm!);
    for (let k = 0; k + 1 < rest.length; k++) expect(rest[k]!.itc).toBeGreaterThanOrEqual(rest[k + 1]!.itc);
  });

  it.runIf(haveTrained)('finds images by their own captions (trained qf demo checkpoint)', async () => {
    const ranks: number[] = [];
    for (const [i, ex] of images.entries()) {
      const out = await search(ex.caption, ['--top', String(COUNT), '--rerank', '5']);
      ranks.push(out.results.findIndex((r) => r.file === fileOf(i)));
    }
    // 10 distinct captions: by chance an image comes first with p = 1/10, so 5 or more firsts happen
    // by chance with p < 0.002; a model that learned the captions does at least that
    expect(ranks.filter((r) => r === 0).length, `ranks ${ranks}`).toBeGreaterThanOrEqual(COUNT / 2);
  });
});
