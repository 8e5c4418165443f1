// Rendering of the result views: retrieval tables, the caption, cross-attention heatmaps and the
// per-backend latency table. Plain DOM, no framework.
import type { RawImage } from '@qf/core';
import type { AnalysisResult, Ranking } from './engine.js';
import { paint } from './images.js';

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...kids: (Node | string)[]
) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
};

const fmt = (x: number, d = 4) => x.toFixed(d);

/** A thumbnail canvas of an image. */
export function thumb(image: RawImage, cls = 'thumb'): HTMLCanvasElement {
  const c = el('canvas', { className: cls });
  paint(c, image);
  return c;
}

/** Image-to-text: candidates by ITC, and the ITM re-ranking of the leaders. */
export function renderImageToText(
  root: HTMLElement,
  r: Ranking,
  candidates: readonly string[],
  truth?: string,
): void {
  const mark = (s: string) => (s === truth ? ' ✓' : '');
  const itc = el(
    'table',
    {},
    el('tr', {}, el('th', {}, '#'), el('th', {}, 'caption (ITC order)'), el('th', {}, 'ITC')),
    ...r.itcOrder.map((i, k) =>
      el(
        'tr',
        {},
        el('td', {}, String(k + 1)),
        el('td', { className: 'text' }, `${candidates[i]}${mark(candidates[i] as string)}`),
        el('td', {}, fmt(r.itc[i] as number)),
      ),
    ),
  );
  const itm = el(
    'table',
    {},
    el(
      'tr',
      {},
      el('th', {}, '#'),
      el('th', {}, `caption (ITM re-rank of top ${r.itm.length})`),
      el('th', {}, 'p(match)'),
    ),
    ...r.itm.map(({ index, p }, k) =>
      el(
        'tr',
        {},
        el('td', {}, String(k + 1)),
        el('td', { className: 'text' }, `${candidates[index]}${mark(candidates[index] as string)}`),
        el('td', {}, fmt(p)),
      ),
    ),
  );
  root.replaceChildren(el('div', { className: 'pair' }, itc, itm));
}

/** Text-to-image: gallery images by ITC, and the ITM re-ranking of the leaders (✓: the text is its caption). */
export function renderTextToImage(
  root: HTMLElement,
  r: Ranking,
  gallery: readonly RawImage[],
  captions: readonly string[],
  text: string,
): void {
  const cell = (i: number, score: string) =>
    el(
      'figure',
      { title: captions[i] ?? '' },
      thumb(gallery[i] as RawImage),
      el('figcaption', {}, `#${i} ${score}${captions[i] === text ? ' ✓' : ''}`),
    );
  root.replaceChildren(
    el('p', {}, 'ITC order'),
    el('div', { className: 'strip' }, ...r.itcOrder.map((i) => cell(i, fmt(r.itc[i] as number, 3)))),
    el('p', {}, `ITM re-rank of the top ${r.itm.length} (p(match))`),
    el('div', { className: 'strip' }, ...r.itm.map(({ index, p }) => cell(index, fmt(p, 3)))),
  );
}

export function renderCaption(root: HTMLElement, caption: AnalysisResult['caption'], truth?: string): void {
  if (!caption) return;
  const ok =
    truth === undefined ? '' : caption.text === truth ? ' (matches the scene)' : ` (scene: "${truth}")`;
  const text = caption.text || '(empty: the first token decodes to nothing, e.g. end of text)';
  root.replaceChildren(
    el('p', { className: 'caption' }, caption.text ? `“${text}”` : text),
    el('p', { className: 'muted' }, `greedy, generated token ids ${caption.ids.join(' ')}${ok}`),
  );
}

/** A colour ramp (black -> purple -> orange -> yellow) for attention weights in [0, 1]. */
function ramp(v: number): [number, number, number] {
  const stops: [number, number, number][] = [
    [0, 0, 4],
    [120, 28, 109],
    [237, 105, 37],
    [252, 255, 164],
  ];
  const x = Math.min(0.999, Math.max(0, v)) * (stops.length - 1);
  const i = Math.floor(x);
  const f = x - i;
  const [a, b] = [stops[i] as number[], stops[i + 1] as number[]];
  return [0, 1, 2].map((c) => Math.round((a[c] as number) + f * ((b[c] as number) - (a[c] as number)))) as [
    number,
    number,
    number,
  ];
}

/**
 * The cross-attention maps of one layer: for every query token, its attention over the image
 * patches (the class token's weight is left out of the map and printed) as a heatmap on the grid,
 * for one head or the mean over heads. Each map is scaled to its own maximum.
 */
export function renderAttention(
  root: HTMLElement,
  a: AnalysisResult['attention'][number],
  head: number | 'mean',
  grid: number,
  image: RawImage,
): void {
  const { heads, queries, tokens, data } = a;
  const patches = tokens - 1;
  if (grid * grid !== patches) {
    root.replaceChildren(el('p', {}, `cannot lay ${patches} patch tokens on a ${grid}x${grid} grid`));
    return;
  }
  const cells: HTMLElement[] = [];
  for (let q = 0; q < queries; q++) {
    const w = new Float32Array(tokens);
    const hs = head === 'mean' ? Array.from({ length: heads }, (_, h) => h) : [head];
    for (const h of hs)
      for (let n = 0; n < tokens; n++)
        w[n] = (w[n] as number) + (data[(h * queries + q) * tokens + n] as number) / hs.length;
    const max = Math.max(...w.subarray(1)) || 1;
    const canvas = el('canvas', { className: 'heat', width: grid, height: grid });
    const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
    const img = ctx.createImageData(grid, grid);
    for (let p = 0; p < patches; p++) {
      const [r, g, b] = ramp((w[p + 1] as number) / max);
      img.data.set([r, g, b, 255], 4 * p);
    }
    ctx.putImageData(img, 0, 0);
    const under = thumb(image, 'under');
    cells.push(
      el(
        'figure',
        { className: 'attn' },
        el('div', { className: 'stack' }, under, canvas),
        el('figcaption', {}, `query ${q} · cls ${fmt(w[0] as number, 2)}`),
      ),
    );
  }
  root.replaceChildren(el('div', { className: 'grid' }, ...cells));
}

/** One backend's latency record. */
export interface LatencyRow {
  readonly backend: string;
  readonly detail: string;
  readonly loadMs: number;
  readonly firstMs: number;
  readonly timings: Record<string, number>;
}

const STAGES = ['vision', 'qformer', 'text', 'itm', 'caption', 'total'];

/** Per-backend latency: model load, first run (warm-up, graph compilation), steady run by stage. */
export function renderLatency(root: HTMLElement, rows: readonly LatencyRow[]): void {
  root.replaceChildren(
    el(
      'table',
      {},
      el(
        'tr',
        {},
        ...['backend', 'runtime', 'load', 'first run', ...STAGES.map((s) => `${s}`)].map((h) =>
          el('th', {}, h),
        ),
      ),
      ...rows.map((r) =>
        el(
          'tr',
          {},
          el('td', {}, r.backend),
          el('td', { className: 'text muted' }, r.detail),
          el('td', {}, `${r.loadMs.toFixed(0)} ms`),
          el('td', {}, `${r.firstMs.toFixed(0)} ms`),
          ...STAGES.map((s) =>
            el('td', {}, r.timings[s] === undefined ? '—' : `${(r.timings[s] as number).toFixed(1)} ms`),
          ),
        ),
      ),
    ),
  );
}
