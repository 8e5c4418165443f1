import type { Backend, QFormerModelSpec, Rng } from '@qf/core';
import type { HostTensor } from '@qf/io';
import {
  STAGE1_NAMES,
  type Stage1Batch,
  type Stage1LossOptions,
  type Stage1TextOptions,
  stage1ParamSpecs,
  stage1ValueAndGrad,
} from '@qf/losses';
import { TrainError } from '../errors.js';
import { type StepGrads, Trainer, type TrainerOptions } from './base.js';

/** LAVIS BLIP-1's range for the ITC temperature (`self.temp.clamp_(0.001, 0.5)`). */
export const TEMPERATURE_RANGE: readonly [number, number] = [0.001, 0.5];

/** Options of {@link Stage1Trainer}. */
export interface Stage1TrainerOptions<T> extends TrainerOptions<T, Stage1Batch> {
  readonly spec: QFormerModelSpec;
  /** [DEC] id, pad id, ITC label smoothing (see `@qf/losses`). */
  readonly text: Stage1TextOptions;
  /**
   * What to train. Default: every stage-1 parameter the losses use (`stage1ParamSpecs` of the spec
   * without `language_projection`): Q-Former, query tokens, ITC/ITM heads, `temp`, `Qformer.cls.*`.
   */
  readonly trainable?: readonly string[];
  /** Objectives (default all three). */
  readonly parts?: Stage1LossOptions['parts'];
  /** ITG label smoothing (default 0.1). */
  readonly itgLabelSmoothing?: number;
  /**
   * Clamp `temp` into this range after every step (default {@link TEMPERATURE_RANGE}); `false` keeps
   * it unclamped, which is what LAVIS's BLIP-2 does (neither `Blip2Qformer.forward` nor the training
   * loop clamps; BLIP-1's models clamp to [0.001, 0.5] at the start of `forward`).
   */
  readonly clampTemperature?: readonly [number, number] | false;
}

/**
 * BLIP-2 stage 1 (representation learning): frozen image-encoder features in, ITC + ITM (hard
 * negatives drawn with the step's seeded `Rng`) + ITG through `@qf/losses`' `stage1ValueAndGrad`,
 * then AdamW on the device. Per step it reports the total loss and `loss_itc`, `loss_itm`,
 * `loss_lm`, plus `temp`.
 */
export class Stage1Trainer<T> extends Trainer<T, Stage1Batch> {
  readonly stage = 'stage1';
  readonly spec: QFormerModelSpec;
  private readonly s1: Stage1TrainerOptions<T>;
  private readonly clamp: readonly [number, number] | false;

  /**
   * @throws LossError `LOSS_MODEL` when the spec has no text path or retrieval heads; TrainError
   *   `TRAIN_OPTIONS` for a bad option; TensorError `TENSOR_MISSING` for a trainable name the store lacks
   */
  constructor(backend: Backend<T>, options: Stage1TrainerOptions<T>) {
    const trainable =
      options.trainable ??
      stage1ParamSpecs({ ...options.spec, languageProjection: undefined }).map((p) => p.name);
    super(backend, trainable, options);
    this.spec = options.spec;
    this.s1 = options;
    this.clamp = options.clampTemperature ?? TEMPERATURE_RANGE;
    if (this.clamp !== false) {
      const [lo, hi] = this.clamp;
      if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo > 0 && lo <= hi))
        throw new TrainError(
          'TRAIN_OPTIONS',
          `clampTemperature must be [lo, hi] with 0 < lo <= hi, got [${lo}, ${hi}]`,
        );
    }
  }

  protected async computeGrads(batch: Stage1Batch, rng: Rng): Promise<StepGrads<T>> {
    const o = this.s1;
    const r = await stage1ValueAndGrad(this.backend, this.spec, this.params, batch, {
      ...o.text,
      trainable: this.trainable,
      rng,
      ...(o.parts ? { parts: o.parts } : {}),
      ...(o.itgLabelSmoothing !== undefined ? { itgLabelSmoothing: o.itgLabelSmoothing } : {}),
    });
    const parts: Record<string, number> = {};
    for (const name of ['loss_itc', 'loss_itm', 'loss_lm'] as const) {
      const t = r.outputs[name] as HostTensor | undefined;
      if (t) parts[name] = (t.data as Float32Array)[0] as number;
    }
    return { loss: r.loss, parts, grads: r.grads };
  }

  protected override async afterStep(): Promise<Record<string, number> | undefined> {
    const name = STAGE1_NAMES.temp;
    if (!this.params.has(name)) return undefined;
    if (this.clamp !== false && this.trainable.includes(name)) {
      const [lo, hi] = this.clamp;
      await this.backend.assignParams((ops) => [
        {
          store: this.params,
          name,
          value: ops.minimum(ops.maximum(this.params.get(name), ops.scalar(lo)), ops.scalar(hi)),
        },
      ]);
    }
    const t = (await this.backend.readParams(this.params, [name])).get(name) as HostTensor;
    return { temp: (t.data as Float32Array)[0] as number };
  }

  protected settings(): Record<string, unknown> {
    const o = this.s1;
    return {
      decoderBosId: o.text.decoderBosId,
      padTokenId: o.text.padTokenId ?? 0,
      itcLabelSmoothing: o.text.itcLabelSmoothing ?? 0.1,
      itgLabelSmoothing: o.itgLabelSmoothing ?? 0.1,
      parts: o.parts ?? ['itc', 'itm', 'itg'],
      clampTemperature: this.clamp,
    };
  }
}
