import { createTfjsBackend } from '@qf/backends/tfjs';
import { QFORMER_DEFAULTS, type QFormerConfig } from '@qf/io';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { crossAttentionLayerCount, matmulFlops, queryPathFlops } from '../src/flops.js';
import { runWorkload } from '../src/measure.js';
import { parseOptions } from '../src/options.js';
import { markdownTable } from '../src/report.js';
import type { BenchReport } from '../src/run.js';
import { quantile } from '../src/stats.js';
import { WORKLOADS, getWorkload, gflopPerImage } from '../src/workloads.js';

const blip2 = { numQueryTokens: 32, numImageTokens: 257 };
const cfg = (o: Partial<QFormerConfig>): QFormerConfig => ({ ...QFORMER_DEFAULTS, ...o });

describe('queryPathFlops', () => {
  it('gives 12.75 GFLOP per image for the BLIP-2 Q-Former', () => {
    const f = queryPathFlops(QFORMER_DEFAULTS, blip2);
    expect(f.total).toBe(12_747_866_112);
    expect(f.total / 1e9).toBeCloseTo(12.75, 2);
    expect(f.crossAttentionLayers).toBe(6);
    expect(f.selfAttention + f.crossAttention + f.feedForward).toBe(f.total);
    // The K/V projections of 257 image tokens dominate: 6 layers x 2 x 2*257*1408*768.
    expect(f.crossAttention).toBe(
      6 * (2 * matmulFlops(32, 768, 768) + 2 * matmulFlops(257, 1408, 768) + 2 * matmulFlops(32, 768, 257)),
    );
  });

  it('matches a hand count on a tiny config', () => {
    // H 4, I 8, E 6, 2 layers, cross-attention every layer, Q 2, N 3.
    const c = cfg({
      hiddenSize: 4,
      numAttentionHeads: 2,
      intermediateSize: 8,
      encoderHiddenSize: 6,
      numHiddenLayers: 2,
      crossAttentionFrequency: 1,
    });
    const f = queryPathFlops(c, { numQueryTokens: 2, numImageTokens: 3 });
    const self = 4 * (2 * 2 * 4 * 4) + 2 * (2 * 2 * 4 * 2); // 128 + 64
    const cross = 2 * (2 * 2 * 4 * 4) + 2 * (2 * 3 * 6 * 4) + 2 * (2 * 2 * 4 * 3); // 128 + 288 + 96
    const ffn = 2 * (2 * 2 * 4 * 8); // 256
    expect(f.selfAttention).toBe(2 * self);
    expect(f.crossAttention).toBe(2 * cross);
    expect(f.feedForward).toBe(2 * ffn);
    expect(f.total).toBe(2 * (self + cross + ffn));
  });

  it('counts cross-attention layers as i % frequency == 0', () => {
    expect(crossAttentionLayerCount(cfg({ numHiddenLayers: 12, crossAttentionFrequency: 1 }))).toBe(12);
    expect(crossAttentionLayerCount(cfg({ numHiddenLayers: 12, crossAttentionFrequency: 2 }))).toBe(6);
    expect(crossAttentionLayerCount(cfg({ numHiddenLayers: 12, crossAttentionFrequency: 5 }))).toBe(3); // 0, 5, 10
    expect(crossAttentionLayerCount(cfg({ numHiddenLayers: 1, crossAttentionFrequency: 3 }))).toBe(1);
  });

  it('does not depend on the head count, and image tokens only change cross-attention', () => {
    const base = queryPathFlops(QFORMER_DEFAULTS, blip2);
    expect(queryPathFlops(cfg({ numAttentionHeads: 8 }), blip2)).toEqual(base);
    const moreTokens = queryPathFlops(QFORMER_DEFAULTS, { ...blip2, numImageTokens: 577 });
    expect(moreTokens.selfAttention).toBe(base.selfAttention);
    expect(moreTokens.feedForward).toBe(base.feedForward);
    expect(moreTokens.crossAttention).toBeGreaterThan(base.crossAttention);
  });

  it('is what the named workloads report', () => {
    expect(gflopPerImage(getWorkload('blip2-default'))).toBeCloseTo(12.748, 3);
    for (const w of Object.values(WORKLOADS)) expect(gflopPerImage(w)).toBeGreaterThan(0);
    expect(() => getWorkload('nope')).toThrow(/unknown workload "nope"/);
  });
});

describe('quantile', () => {
  it('interpolates linearly between order statistics', () => {
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBeCloseTo(9.1, 10);
    expect(quantile([7], 0.9)).toBe(7);
    expect(() => quantile([], 0.5)).toThrow();
  });
});

describe('parseOptions', () => {
  it('has quick and full defaults, and ignores a bare --', () => {
    const q = parseOptions(['--', '--quick']);
    expect(q.quick).toBe(true);
    expect(q.workloads).toEqual(['small']);
    expect(q.backends).toEqual(['tfjs-cpu', 'tfjs-wasm']);
    const f = parseOptions([
      '--backends',
      'tfjs-wasm',
      '--workloads',
      'blip2-default',
      '--runs',
      '4',
      '--out',
      'x',
    ]);
    expect(f.quick).toBe(false);
    expect(f.backends).toEqual(['tfjs-wasm']);
    expect(f.workloads).toEqual(['blip2-default']);
    expect(f.runs).toBe(4);
    expect(f.outDir).toBe('x');
    expect(f.caps).toBe(true);
    expect(parseOptions(['--no-caps']).caps).toBe(false);
  });

  it('names a bad value', () => {
    expect(() => parseOptions(['--backends', 'tfjs-gpu'])).toThrow(/unknown backend "tfjs-gpu"/);
    expect(() => parseOptions(['--runs', '0'])).toThrow(/--runs/);
    expect(() => parseOptions(['--workloads', 'huge'])).toThrow(/unknown workload "huge"/);
  });
});

describe('runWorkload (tfjs-cpu, tiny config, runs=1)', () => {
  it('returns well-formed results and leaves no tensors behind', async () => {
    const backend = await createTfjsBackend('cpu');
    const w = getWorkload('tiny');
    const start = tf.memory().numTensors;
    const results = await runWorkload(backend, w, [1, 2], { runs: 1, warmup: 1 });
    expect(tf.memory().numTensors).toBe(start); // parameters freed too

    expect(results).toHaveLength(2);
    for (const [i, r] of results.entries()) {
      expect(r).toMatchObject({
        backend: 'tfjs-cpu',
        workload: 'tiny',
        batch: [1, 2][i],
        threads: 1,
        warmupRuns: 1,
        runs: 1,
        requestedRuns: 1,
      });
      expect(r.timesMs).toHaveLength(1);
      expect(r.medianMs).toBe(r.timesMs[0]);
      expect(r.p90Ms).toBe(r.medianMs);
      expect(r.minMs).toBe(r.medianMs);
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.imagesPerSec).toBeCloseTo(r.batch / (r.medianMs / 1000), 6);
      expect(r.gflopPerImage).toBeCloseTo(gflopPerImage(w), 12);
      expect(r.gflopPerSec).toBeCloseTo((r.gflopPerImage * r.batch) / (r.medianMs / 1000), 6);
      expect(r.peakRssMiB).toBeGreaterThan(0);
      expect(r.maxRssMiB).toBeGreaterThanOrEqual(r.peakRssMiB * 0.99);
      expect(r.numTensorsBefore).toBeGreaterThan(start); // the model's parameters
      expect(r.numTensorsAfter).toBe(r.numTensorsBefore);
      expect(r.note).toBeUndefined();
    }

    const table = markdownTable({ results } as unknown as BenchReport);
    expect(table.split('\n')).toHaveLength(4);
    expect(table).toContain('| tfjs-cpu | 1 | tiny | 2 | 1 |');
  });
});
