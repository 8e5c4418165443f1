import { availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';

/** Where a benchmark ran. */
export interface MachineInfo {
  readonly cpuModel: string;
  /** Logical cores Node can use (`os.availableParallelism()`). */
  readonly cores: number;
  readonly totalMemoryGiB: number;
  readonly platform: string;
  readonly arch: string;
  readonly node: string;
  readonly tfjsCore: string;
  /** 1/5/15-minute load averages when the run started: other work on the machine skews timings. */
  readonly loadAverage: readonly number[];
}

/** Describes this machine and runtime. */
export function machineInfo(): MachineInfo {
  const cpu = cpus()[0];
  return {
    cpuModel: cpu?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    totalMemoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${platform()} ${release()}`,
    arch: process.arch,
    node: process.version,
    tfjsCore: tf.version_core,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
