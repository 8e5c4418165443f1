import { demoConfig as shapesConfig, demoConfigJson as shapesConfigJson, qformerSpec } from '@qf/demo';
import type { QFormerModelSpec } from '@qf/core';
import type { Blip2Config } from '@qf/io';

/**
 * The demo model's HF `Blip2Config` JSON (model_type `blip-2`: vision tower, Q-Former, OPT), at the
 * `shapes` recipe's default sizes (see `@qf/demo`).
 */
export function demoConfigJson(): Record<string, unknown> {
  return shapesConfigJson();
}

/** The parsed demo config. */
export function demoConfig(): Blip2Config {
  return shapesConfig();
}

/** Every part of the demo Q-Former: text path, ITC/ITM heads, language projection. */
export function demoSpec(config: Blip2Config): QFormerModelSpec {
  return qformerSpec(config);
}
