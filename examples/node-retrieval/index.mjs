// Rank texts for images with a BLIP-2 Q-Former: ITC similarities for every pair, then the ITM head
// for each image's best text. Uses only the public package APIs and local files.
//
//   pnpm --filter @qf/example-node-retrieval start [model-dir] [inputs.safetensors]
//
// Defaults to the tiny HF reference model in ../shared/golden/public_small (random weights, so the
// ranking itself is meaningless; the numbers match HF transformers).
import { fileURLToPath } from 'node:url';
import { createTfjsBackend } from '@qf/backends/tfjs';
import { loadQFormerFromDir } from '@qf/core/node';
import { openSafetensors } from '@qf/io/node';

const golden = fileURLToPath(new URL('../../../shared/golden/public_small/', import.meta.url));
const modelDir = process.argv[2] ?? `${golden}hf`;
const inputsPath = process.argv[3] ?? `${golden}inputs.safetensors`;

const backend = await createTfjsBackend('wasm');
const model = await loadQFormerFromDir(backend, modelDir);
const file = await openSafetensors(inputsPath);
const image = await file.read('image_embeds');
const ids = await file.read('input_ids');
const mask = await file.read('attention_mask');
await file.close();

const { itc, itm } = await model.score(image, ids, mask);
const [bi, bt] = itc.shape;
console.log(`backend ${backend.name}; ${bi} images x ${bt} texts`);
for (let i = 0; i < bi; i++) {
  const row = Array.from(itc.data.subarray(i * bt, (i + 1) * bt));
  const best = row.indexOf(Math.max(...row));
  const [no, yes] = [itm.data[i * 2], itm.data[i * 2 + 1]];
  const pMatch = 1 / (1 + Math.exp(no - yes));
  console.log(
    `image ${i}: ITC ${row.map((v) => v.toFixed(3)).join(' ')} -> best text ${best}; ITM p(match with text ${i}) = ${pMatch.toFixed(3)}`,
  );
}
model.dispose();
