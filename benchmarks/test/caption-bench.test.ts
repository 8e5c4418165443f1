import { describe, expect, it } from 'vitest';
import { parseCaptionOptions, runCaptionBench } from '../src/caption-bench.js';
import { captionTable, renderCaptionMarkdown } from '../src/caption/report.js';
import { lazyRandomTensors, modelSize, CAPTION_WORKLOADS } from '../src/caption/workloads.js';

describe('caption benchmark', () => {
  it('parses its options: quick = the tiny workload, every backend', () => {
    const q = parseCaptionOptions(['--quick']);
    expect(q.workloads).toEqual(['tiny-opt']);
    expect(q.backends).toEqual(['tfjs-cpu', 'onnx', 'onnx-nospin']);
    expect(q.runsFor('tiny-opt')).toBe(5);
    const full = parseCaptionOptions([]);
    expect(full.workloads).toEqual(['tiny-opt', 'blip2-vitg-opt125m']);
    expect(full.runsFor('blip2-vitg-opt125m')).toBe(3);
    expect(() => parseCaptionOptions(['--backends', 'tfjs-gpu'])).toThrow(/unknown backend "tfjs-gpu"/);
    expect(() => parseCaptionOptions(['--workloads', 'huge'])).toThrow(/unknown workload "huge"/);
  });

  it('the BLIP-2-sized workload has ViT-g and the 12-layer Q-Former, and lazy deterministic weights', () => {
    const w = CAPTION_WORKLOADS['blip2-vitg-opt125m'];
    if (!w) throw new Error('missing workload');
    const size = modelSize(w.config);
    // ViT-g/14 at 224 px: 39 layers of hidden 1408 / MLP 6144 plus embeddings.
    expect(size.vision / 1e6).toBeCloseTo(986.0, 0);
    const tensors = lazyRandomTensors(w.config);
    const q = tensors.get('vision_model.encoder.layers.38.self_attn.qkv.weight');
    expect(q?.shape).toEqual([3 * 1408, 1408]);
    const a = q?.data as Float32Array;
    expect(Array.from(a.subarray(0, 4))).toEqual(Array.from((q?.data as Float32Array).subarray(0, 4)));
    expect(Math.max(...a.subarray(0, 1000).map(Math.abs))).toBeLessThanOrEqual(0.02 * Math.sqrt(3));
    expect(tensors.get('qformer.encoder.layer.11.output_query.LayerNorm.weight')?.data[0]).toBe(1);
    expect(tensors.get('language_model.model.decoder.layers.11.fc1.bias')?.data[0]).toBe(0);
  });

  it('measures the tiny workload end to end on tfjs-cpu and on exported ONNX files (no speed asserted)', async () => {
    const o = parseCaptionOptions(['--quick', '--runs', '1']);
    const report = await runCaptionBench(o, ['--quick', '--runs', '1'], () => {});
    expect(report.results.map((r) => r.backend)).toEqual(['tfjs-cpu', 'onnx', 'onnx-nospin']);
    for (const r of report.results) {
      expect(r.newTokens).toBe(20);
      expect(r.runs).toBe(1);
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.phases.vision + r.phases.qformer + r.phases.lm).toBeLessThanOrEqual(r.medianMs);
      expect(r.tokensPerSec).toBeGreaterThan(0);
      expect(r.liveAfter).toBe(r.liveBefore);
    }
    expect(report.leaked).toBe(false);
    expect(captionTable(report).split('\n')).toHaveLength(5);
    expect(renderCaptionMarkdown(report)).toContain('generated tokens/s');
  });
});
