// Rebuilds the app's default checkpoint, public/checkpoint/, from `qf demo` (the built-in `shapes`
// recipe: a miniature BLIP-2 trained from scratch on CPU) and checks it fits the 10 MB budget.
//
//   pnpm build && pnpm --filter @qf/example-browser checkpoint                 # runs qf demo
//   pnpm --filter @qf/example-browser checkpoint -- --from ./qf-demo-out       # copies an existing run
//   pnpm --filter @qf/example-browser checkpoint -- --seed 1                   # extra args go to qf demo
//
// The model directory is found inside the demo's output: the one with config.json, weights and a
// whole BLIP-2 config (vision tower, Q-Former, language model). Copied: config.json, the weights
// (model.safetensors, or the index and its shards), tokenizer files, qformer_tokenizer/, the image
// processor config and the demo's figures (demo.json); not its sample images.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const target = resolve(here, '../public/checkpoint');
const LIMIT = 10 * 2 ** 20;
const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
  'preprocessor_config.json',
  'demo.json',
];

/** Directories under `root` (itself included) that hold an HF model: config.json + weights. */
function modelDirs(root) {
  const out = [];
  const walk = (dir) => {
    const names = readdirSync(dir);
    if (names.includes('config.json') && names.some((n) => /^model\.safetensors(\.index\.json)?$/.test(n)))
      out.push(dir);
    for (const n of names) {
      const p = join(dir, n);
      if (statSync(p).isDirectory() && !n.startsWith('.')) walk(p);
    }
  };
  walk(root);
  return out;
}

/** A whole BLIP-2: vision tower, Q-Former and LM sections. */
function isWholeBlip2(dir) {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  return Boolean(c.vision_config && c.qformer_config && c.text_config);
}

function copyModel(src) {
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  const files = ['config.json', ...TOKENIZER_FILES];
  if (existsSync(join(src, 'model.safetensors'))) files.push('model.safetensors');
  else {
    const index = JSON.parse(readFileSync(join(src, 'model.safetensors.index.json'), 'utf8'));
    files.push('model.safetensors.index.json', ...new Set(Object.values(index.weight_map)));
  }
  const q = join(src, 'qformer_tokenizer');
  if (existsSync(q)) for (const f of readdirSync(q)) files.push(join('qformer_tokenizer', f));
  let bytes = 0;
  for (const f of files) {
    if (!existsSync(join(src, f))) continue;
    mkdirSync(dirname(join(target, f)), { recursive: true });
    copyFileSync(join(src, f), join(target, f));
    const size = statSync(join(target, f)).size;
    bytes += size;
    console.log(`  ${f.padEnd(34)} ${(size / 1024).toFixed(1).padStart(9)} KiB`);
  }
  return bytes;
}

const args = process.argv.slice(2).filter((a) => a !== '--');
let from;
const fromAt = args.indexOf('--from');
if (fromAt >= 0) {
  from = resolve(process.env.INIT_CWD ?? process.cwd(), args[fromAt + 1] ?? '.');
  args.splice(fromAt, 2);
} else {
  from = join(repo, '.tmp/browser-checkpoint-demo');
  const bin = join(repo, 'packages/cli/dist/bin.js');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`pnpm build\` first`);
  rmSync(from, { recursive: true, force: true });
  console.log(`running: qf demo --out ${relative(repo, from)} ${args.join(' ')}`);
  execFileSync(process.execPath, [bin, 'demo', '--out', from, ...args], { stdio: 'inherit', cwd: repo });
}
const found = modelDirs(from).filter(isWholeBlip2);
if (found.length === 0)
  throw new Error(
    `no whole BLIP-2 model directory (config.json with vision, Q-Former and text configs + weights) under ${from}`,
  );
if (found.length > 1) console.log(`several model directories; taking ${found[0]}`);
console.log(`copying ${found[0]} -> ${relative(repo, target)}/`);
const bytes = copyModel(found[0]);
console.log(`total ${(bytes / 2 ** 20).toFixed(2)} MiB (limit ${LIMIT / 2 ** 20} MiB)`);
if (bytes > LIMIT) {
  rmSync(target, { recursive: true, force: true });
  throw new Error(`the checkpoint is ${(bytes / 2 ** 20).toFixed(2)} MiB, over the 10 MiB budget: not kept`);
}
