// Image sources: generated shapes scenes (@qf/shapes, deterministic from a seed), a drawing canvas,
// and uploads (decoded by @qf/io's decodeImageBlob); plus drawing RGB images onto canvases.
import type { RawImage } from '@qf/core';
import { decodeImageBlob } from '@qf/io';
import { COLOUR_RGB, COLOURS, type ShapeExample, generateShapes } from '@qf/shapes';

/** Side of generated images: the model's input size, within what @qf/shapes renders. */
export function shapesSize(imageSize: number): number {
  return Math.min(1024, Math.max(24, imageSize));
}

/** The gallery: the test split of a shapes set (distinct captions), `n` images. */
export function shapesGallery(seed: number, n: number, imageSize: number): ShapeExample[] {
  return generateShapes({
    seed,
    imageSize: shapesSize(imageSize),
    counts: { train: 0, validation: 0, test: n },
  }).test;
}

/** One new scene from a seed (its own split, so any seed gives one image and its caption). */
export function shapesScene(seed: number, imageSize: number): ShapeExample {
  return shapesGallery(seed, 1, imageSize)[0] as ShapeExample;
}

/** Draws an RGB (or RGBA / grey) image onto a canvas of the image's size (CSS scales it). */
export function paint(canvas: HTMLCanvasElement, image: RawImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  const out = ctx.createImageData(image.width, image.height);
  const c = image.channels;
  for (let p = 0; p < image.width * image.height; p++) {
    const grey = c < 3;
    out.data[4 * p] = image.data[p * c] as number;
    out.data[4 * p + 1] = image.data[p * c + (grey ? 0 : 1)] as number;
    out.data[4 * p + 2] = image.data[p * c + (grey ? 0 : 2)] as number;
    out.data[4 * p + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

/** The RGB pixels of a canvas (alpha dropped). */
export function canvasImage(canvas: HTMLCanvasElement): RawImage {
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    rgb[3 * p] = data[4 * p] as number;
    rgb[3 * p + 1] = data[4 * p + 1] as number;
    rgb[3 * p + 2] = data[4 * p + 2] as number;
  }
  return { data: rgb, width, height, channels: 3 };
}

/** Decodes an uploaded file (PNG, JPEG, WebP...). */
export async function uploadedImage(file: File): Promise<RawImage> {
  return decodeImageBlob(file);
}

/**
 * A drawing pad: black background (as the shapes scenes), the six shapes colours, a brush. Returns a
 * function that clears it.
 */
export function drawingPad(canvas: HTMLCanvasElement, palette: HTMLElement): () => void {
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  let colour = `rgb(${COLOUR_RGB.red.join(',')})`;
  const clear = () => {
    ctx.fillStyle = 'black';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  palette.replaceChildren(
    ...COLOURS.map((name) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.title = name;
      b.className = 'swatch';
      b.style.background = `rgb(${COLOUR_RGB[name].join(',')})`;
      b.onclick = () => {
        colour = b.style.background;
      };
      return b;
    }),
  );
  let down = false;
  const at = (e: PointerEvent) => {
    const r = canvas.getBoundingClientRect();
    return [
      ((e.clientX - r.left) / r.width) * canvas.width,
      ((e.clientY - r.top) / r.height) * canvas.height,
    ];
  };
  const dot = (e: PointerEvent) => {
    const [x, y] = at(e) as [number, number];
    ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.arc(x, y, canvas.width / 24, 0, 2 * Math.PI);
    ctx.fill();
  };
  canvas.onpointerdown = (e) => {
    down = true;
    dot(e);
  };
  canvas.onpointermove = (e) => {
    if (down) dot(e);
  };
  canvas.onpointerup = canvas.onpointerleave = () => {
    down = false;
  };
  return clear;
}
