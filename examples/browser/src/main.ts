// The app: load a checkpoint (default ./checkpoint/, the committed `qf demo` output), pick an image
// (shapes gallery, generated scene, drawing, upload), and show retrieval, caption and attention
// maps on the chosen backend. Query parameters (all optional): backend, checkpoint (URL of a model
// directory), seed (gallery), query (gallery index), text (text-to-image query), top (ITM re-rank
// depth), candidates (gallery | objects), autorun (0 to wait for the user).
import type { RawImage } from '@qf/core';
import { OBJECT_COUNT, type ShapeExample, captionOf, objectFromIndex } from '@qf/shapes';
import { BACKENDS, type BackendId, type OpenedBackend, isBackendId, openBackend } from './backends.js';
import { type CheckpointBundle, type Progress, openFiles, openUrl } from './checkpoint.js';
import { type AnalysisResult, type Models, analyze, disposeModels, loadModels } from './engine.js';
import { canvasImage, drawingPad, paint, shapesGallery, shapesScene, uploadedImage } from './images.js';
import {
  type LatencyRow,
  renderAttention,
  renderCaption,
  renderImageToText,
  renderLatency,
  renderTextToImage,
  thumb,
} from './views.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const GALLERY_SIZE = 8;
const MAX_NEW_TOKENS = 16;

/** What the page exposes to tests and tools once a run is done (or failed). */
export interface PageResult {
  readonly backend: string;
  readonly detail: string;
  readonly checkpoint: string;
  readonly progress: { loaded: number; total: number };
  readonly inputs: {
    seed: number;
    query: number | null;
    text: string;
    candidates: string[];
    gallery: string[];
  };
  readonly i2t?: AnalysisResult['i2t'];
  readonly t2i?: AnalysisResult['t2i'];
  readonly caption?: AnalysisResult['caption'];
  readonly attention: { layer: number; heads: number; queries: number; tokens: number; data: number[] }[];
  readonly missing: Models['missing'];
  readonly timings: Record<string, number>;
  readonly firstMs: number;
  readonly error?: string;
}
declare global {
  interface Window {
    qfResult?: PageResult;
  }
}

const state: {
  bundle?: CheckpointBundle;
  models?: Models;
  opened?: OpenedBackend;
  loadMs: number;
  progress: { loaded: number; total: number };
  seed: number;
  gallery: ShapeExample[];
  query: { image: RawImage; truth?: string; index: number | null };
  result?: AnalysisResult;
  busy: boolean;
} = {
  loadMs: 0,
  progress: { loaded: 0, total: 0 },
  seed: Number(params.get('seed') ?? 0),
  gallery: [],
  query: { image: { data: new Uint8Array(3), width: 1, height: 1, channels: 3 }, index: null },
  busy: false,
};

function status(text: string, error = false): void {
  const s = $('status');
  s.textContent = text;
  s.className = error ? 'error' : 'muted';
}

const progress: Progress = (loaded, total) => {
  state.progress = { loaded, total };
  const bar = $<HTMLProgressElement>('progress');
  bar.max = Math.max(total, 1);
  bar.value = loaded;
  $('progress-text').textContent = `${(loaded / 2 ** 20).toFixed(2)} / ${(total / 2 ** 20).toFixed(2)} MiB`;
};

function candidates(): string[] {
  const own = state.gallery.map((g) => g.caption);
  if (state.query.truth && !own.includes(state.query.truth)) own.push(state.query.truth);
  if ($<HTMLSelectElement>('candidates').value !== 'objects') return own;
  const objects = Array.from({ length: OBJECT_COUNT }, (_, i) =>
    captionOf({ objects: [objectFromIndex(i)] }),
  );
  return [...own, ...objects.filter((c) => !own.includes(c))];
}

function setQuery(image: RawImage, truth: string | undefined, index: number | null): void {
  state.query = { image, truth, index };
  paint($<HTMLCanvasElement>('query'), image);
  $('query-caption').textContent = truth ? `scene: “${truth}”` : 'your image';
  for (const [i, c] of [...$('gallery').querySelectorAll('canvas')].entries())
    c.classList.toggle('selected', i === index);
}

function showGallery(): void {
  const size = state.models?.imageSize ?? 32;
  state.gallery = shapesGallery(state.seed, GALLERY_SIZE, size);
  $('gallery').replaceChildren(
    ...state.gallery.map((g, i) => {
      const fig = document.createElement('figure');
      const c = thumb(g.image);
      c.title = g.caption;
      fig.append(c);
      fig.onclick = () => {
        setQuery(g.image, g.caption, i);
        void run();
      };
      return fig;
    }),
  );
  const q = Math.min(Number(params.get('query') ?? 0), GALLERY_SIZE - 1);
  const picked = state.gallery[q] as ShapeExample;
  setQuery(picked.image, picked.caption, q);
  const text = $<HTMLInputElement>('text');
  if (!text.value) text.value = params.get('text') ?? (state.gallery[1] ?? picked).caption;
}

async function useBackend(id: BackendId): Promise<void> {
  if (!state.bundle) throw new Error('no checkpoint loaded');
  if (state.models) disposeModels(state.models);
  state.models = undefined;
  if (state.opened) await state.opened.dispose();
  state.opened = undefined;
  status(`opening ${id}…`);
  const t0 = performance.now();
  state.opened = await openBackend(id);
  state.models = await loadModels(state.opened, state.bundle);
  state.loadMs = performance.now() - t0;
}

function latencyRows(): LatencyRow[] {
  try {
    return JSON.parse(localStorage.getItem(`qf-latency:${state.bundle?.label}`) ?? '[]');
  } catch {
    return [];
  }
}

function recordLatency(row: LatencyRow): void {
  const order = BACKENDS.map((b) => b.id as string);
  const rows = [...latencyRows().filter((r) => r.backend !== row.backend), row].sort(
    (a, b) => order.indexOf(a.backend) - order.indexOf(b.backend),
  );
  localStorage.setItem(`qf-latency:${state.bundle?.label}`, JSON.stringify(rows));
  renderLatency($('latency-out'), rows);
}

function renderAttentionView(): void {
  const r = state.result;
  const m = state.models;
  if (!r || !m || r.attention.length === 0) return;
  const layerSel = $<HTMLSelectElement>('layer');
  const headSel = $<HTMLSelectElement>('head');
  const layer =
    r.attention.find((a) => String(a.layer) === layerSel.value) ??
    (r.attention[0] as AnalysisResult['attention'][number]);
  const head = headSel.value === 'mean' || headSel.value === '' ? 'mean' : Number(headSel.value);
  renderAttention($('attention-out'), layer, head, m.grid, state.query.image);
}

function fillSelectors(r: AnalysisResult): void {
  const layerSel = $<HTMLSelectElement>('layer');
  const headSel = $<HTMLSelectElement>('head');
  const keep = [layerSel.value, headSel.value];
  layerSel.replaceChildren(...r.attention.map((a) => new Option(`${a.layer}`, `${a.layer}`)));
  const heads = r.attention[0]?.heads ?? 0;
  headSel.replaceChildren(
    new Option('mean', 'mean'),
    ...Array.from({ length: heads }, (_, h) => new Option(`${h}`, `${h}`)),
  );
  if (keep[0] && r.attention.some((a) => String(a.layer) === keep[0])) layerSel.value = keep[0];
  if (keep[1] && Number(keep[1]) < heads) headSel.value = keep[1];
}

function render(r: AnalysisResult, cands: string[]): void {
  const m = state.models as Models;
  if (r.i2t) renderImageToText($('i2t'), r.i2t, cands, state.query.truth);
  else $('i2t').textContent = m.missing.retrieval ?? '';
  if (r.t2i)
    renderTextToImage(
      $('t2i'),
      r.t2i,
      state.gallery.map((g) => g.image),
      state.gallery.map((g) => g.caption),
      $<HTMLInputElement>('text').value.trim(),
    );
  else $('t2i').textContent = m.missing.retrieval ?? '';
  if (r.caption) renderCaption($('caption-out'), r.caption, state.query.truth);
  else $('caption-out').textContent = m.missing.caption ?? '';
  fillSelectors(r);
  renderAttentionView();
}

/** Runs every view on the current backend: a first (warm-up) run, then the timed steady one. */
async function run(): Promise<void> {
  const m = state.models;
  const opened = state.opened;
  if (!m || !opened || !state.bundle || state.busy) return;
  state.busy = true;
  try {
    const cands = candidates();
    const input = {
      query: state.query.image,
      gallery: state.gallery.map((g) => g.image),
      candidates: cands,
      text: $<HTMLInputElement>('text').value.trim() || (state.gallery[0]?.caption ?? ''),
      rerankTop: Math.max(1, Number($<HTMLInputElement>('top').value) || 5),
      maxNewTokens: MAX_NEW_TOKENS,
    };
    status(`running on ${opened.id}…`);
    const t0 = performance.now();
    await analyze(m, state.bundle, input);
    const firstMs = performance.now() - t0;
    const r = await analyze(m, state.bundle, input);
    state.result = r;
    render(r, cands);
    recordLatency({
      backend: opened.id,
      detail: opened.detail(),
      loadMs: state.loadMs,
      firstMs,
      timings: r.timings,
    });
    status(
      `${opened.id}: ${r.timings['total']?.toFixed(1)} ms per run (first run ${firstMs.toFixed(0)} ms) · ${opened.detail()}`,
    );
    window.qfResult = {
      backend: opened.id,
      detail: opened.detail(),
      checkpoint: state.bundle.label,
      progress: state.progress,
      inputs: {
        seed: state.seed,
        query: state.query.index,
        text: input.text,
        candidates: cands,
        gallery: state.gallery.map((g) => g.caption),
      },
      i2t: r.i2t,
      t2i: r.t2i,
      caption: r.caption,
      attention: r.attention.map((a) => ({ ...a, data: Array.from(a.data) })),
      missing: m.missing,
      timings: r.timings,
      firstMs,
    };
  } finally {
    state.busy = false;
  }
}

function fail(e: unknown): void {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  status(`error: ${msg}`, true);
  console.warn(e);
  window.qfResult = {
    backend: $<HTMLSelectElement>('backend').value,
    detail: '',
    checkpoint: state.bundle?.label ?? '',
    progress: state.progress,
    inputs: { seed: state.seed, query: null, text: '', candidates: [], gallery: [] },
    attention: [],
    missing: {},
    timings: {},
    firstMs: 0,
    error: msg,
  };
}

async function loadCheckpoint(open: () => Promise<CheckpointBundle>): Promise<void> {
  status('loading the checkpoint…');
  if (state.bundle) await state.bundle.checkpoint.close();
  state.bundle = await open();
  const info = $('ckpt-info');
  info.textContent = [state.bundle.label, ...state.bundle.notes].join(' · ');
  await useBackend($<HTMLSelectElement>('backend').value as BackendId);
  renderLatency($('latency-out'), latencyRows());
  showGallery();
  await run();
}

function wire(): void {
  const sel = $<HTMLSelectElement>('backend');
  sel.replaceChildren(...BACKENDS.map((b) => new Option(b.label, b.id)));
  const wanted = params.get('backend') ?? 'tfjs-wasm';
  if (!isBackendId(wanted))
    throw new Error(`unknown backend "${wanted}" (one of ${BACKENDS.map((b) => b.id).join(', ')})`);
  sel.value = wanted;
  sel.onchange = () =>
    useBackend(sel.value as BackendId)
      .then(run)
      .catch(fail);
  $('run').onclick = () => run().catch(fail);
  const url = $<HTMLInputElement>('ckpt-url');
  url.value = params.get('checkpoint') ?? './checkpoint/';
  $('ckpt-load').onclick = () =>
    loadCheckpoint(() =>
      openUrl(new URL(url.value, location.href).href, progress).catch((e: unknown) => {
        if ((e as { code?: string }).code !== 'CHECKPOINT_NO_CONFIG') throw e;
        throw new Error(
          `no checkpoint at ${url.value} (config.json not found): build the default one with \`pnpm --filter @qf/example-browser checkpoint\`, or pick a model directory`,
        );
      }),
    ).catch(fail);
  for (const id of ['ckpt-dir', 'ckpt-files']) {
    const input = $<HTMLInputElement>(id);
    input.onchange = () => {
      const files = [...(input.files ?? [])];
      if (files.length) loadCheckpoint(() => openFiles(files, progress)).catch(fail);
    };
  }
  $<HTMLInputElement>('seed').value = String(state.seed);
  $('regen').onclick = () => {
    state.seed = Number($<HTMLInputElement>('seed').value) || 0;
    showGallery();
    run().catch(fail);
  };
  $('generate').onclick = () => {
    const scene = shapesScene(Math.floor(Math.random() * 2 ** 31), state.models?.imageSize ?? 32);
    setQuery(scene.image, scene.caption, null);
    run().catch(fail);
  };
  const upload = $<HTMLInputElement>('upload');
  upload.onchange = () => {
    const f = upload.files?.[0];
    if (f)
      uploadedImage(f)
        .then((img) => setQuery(img, undefined, null))
        .then(run)
        .catch(fail);
  };
  const pad = $<HTMLCanvasElement>('pad');
  const clear = drawingPad(pad, $('palette'));
  $('clear').onclick = clear;
  $('use-drawing').onclick = () => {
    setQuery(canvasImage(pad), undefined, null);
    run().catch(fail);
  };
  for (const id of ['candidates', 'top']) $(id).onchange = () => run().catch(fail);
  $('text').onchange = () => run().catch(fail);
  $('layer').onchange = renderAttentionView;
  $('head').onchange = renderAttentionView;
  $('latency-clear').onclick = () => {
    localStorage.removeItem(`qf-latency:${state.bundle?.label}`);
    renderLatency($('latency-out'), []);
  };
  if (params.get('top')) $<HTMLInputElement>('top').value = params.get('top') as string;
  if (params.get('candidates')) $<HTMLSelectElement>('candidates').value = params.get('candidates') as string;
}

try {
  wire();
  if (params.get('autorun') !== '0') $('ckpt-load').click();
  else status('ready: load a checkpoint');
} catch (e) {
  fail(e);
}
