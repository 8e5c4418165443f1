/**
 * Prints the dataset statistics table of the README (Markdown) for the default options, and optionally
 * writes sample PNGs.
 *
 *   pnpm --filter @qf/shapes stats [--seed 0] [--image-size 32] [--png DIR] [--samples 8]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  generateShapes,
  OBJECT_COUNT,
  PAIR_COUNT,
  SCENE_COUNT,
  type SplitStatistics,
  shapesGeometry,
  shapesStatistics,
  shapesVocabulary,
  writePng,
} from '../src/index.js';

const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: {
    seed: { type: 'string', default: '0' },
    'image-size': { type: 'string', default: '32' },
    png: { type: 'string' },
    samples: { type: 'string', default: '8' },
  },
});
const seed = Number(values.seed);
const imageSize = Number(values['image-size']);

const t0 = performance.now();
const ds = generateShapes({ seed, imageSize });
const ms = performance.now() - t0;
const st = shapesStatistics(ds);
const g = shapesGeometry(imageSize);
const vocab = shapesVocabulary();

const pct = (n: number, d: number) => `${((100 * n) / (d || 1)).toFixed(1)}%`;
const row = (name: string, s: SplitStatistics) =>
  `| ${name} | ${s.examples} | ${s.oneObject} | ${s.leftOf} | ${s.above} | ${s.distinctCaptions} | ` +
  `${name === 'train' ? '-' : `${s.captionInTrain} (${pct(s.captionInTrain, s.examples)})`} | ` +
  `${s.words.min}-${s.words.max} (mean ${s.words.mean.toFixed(2)}) | ${pct(s.foreground, 1)} |`;

const lines = [
  `Defaults: seed ${seed}, ${imageSize}x${imageSize} RGB, small ${g.small} px, large ${g.large} px, ` +
    `gap ${g.gap} px, singleFraction ${ds.options.singleFraction}, heldOut ${ds.options.heldOut}, noise ${ds.options.noise}.`,
  '',
  '| split | examples | one object | left of | above | distinct captions | caption also in train | words | foreground |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  row('train', st.train),
  row('validation', st.validation),
  row('test', st.test),
  '',
  `Description space: ${OBJECT_COUNT} objects, ${SCENE_COUNT} captions (${OBJECT_COUNT} one-object + ${PAIR_COUNT} two-object). ` +
    `Train covers ${st.train.distinctCaptions} of them. Vocabulary: ${vocab.words.length} words; ` +
    `Q-Former ${vocab.qformer.tokens.length} tokens, LM ${vocab.lm.tokens.length} tokens. ` +
    `Generation took ${ms.toFixed(0)} ms.`,
  '',
  `Train word counts: ${Object.entries(st.trainWordCounts)
    .map(([w, n]) => `${w} ${n}`)
    .join(', ')}.`,
];
console.log(lines.join('\n'));

if (values.png) {
  mkdirSync(values.png, { recursive: true });
  for (const [k, ex] of ds.test.slice(0, Number(values.samples)).entries()) {
    const file = join(values.png, `test-${k}-${ex.caption.replaceAll(' ', '_')}.png`);
    writeFileSync(file, writePng(ex.image));
    console.log(`wrote ${file}`);
  }
}
