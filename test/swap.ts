// The one hot-deploy-under-load routine of the zero-loss tests: start a
// load, let it run, deploy again and again, let it settle, stop the load.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Load, LoadResult } from '../harness/load.ts';

export interface DeployPlan {
  /** Starts one deploy (a HUP, a new instance...). */
  deploy: () => void;
  count: number;
  /**
   * Deploys completed so far. When given, each deploy waits for the one
   * before it to complete (as a pipeline that waits for its deploy would).
   */
  done?: () => number;
  /** Pause after each deploy; a function gives a new one each time (random gaps). */
  gapMs?: number | (() => number);
  /** Give up on a deploy that takes longer than this (with `done`). */
  eachTimeoutMs?: number;
}

/** Deploys one after another; resolves to how long each took to complete (with `done`), or to be sent. */
export async function deploySeries(p: DeployPlan): Promise<number[]> {
  const took: number[] = [];
  const eachTimeoutMs = p.eachTimeoutMs ?? 60_000;
  for (let i = 0; i < p.count; i++) {
    const before = p.done?.() ?? 0;
    const t = performance.now();
    p.deploy();
    while (p.done && p.done() <= before) {
      if (performance.now() - t > eachTimeoutMs) throw new Error(`deploy ${i + 1} of ${p.count} not done after ${eachTimeoutMs} ms`);
      await sleep(10);
    }
    took.push(performance.now() - t);
    const gap = typeof p.gapMs === 'function' ? p.gapMs() : (p.gapMs ?? 0);
    const rest = gap - (performance.now() - t);
    if (rest > 0) await sleep(rest);
  }
  return took;
}

export interface SwapPlan extends DeployPlan {
  load: () => Load | Promise<Load>;
  /** Before the load stops: waits (up to a minute) until this holds, e.g. every old generation is gone. */
  settled?: () => boolean;
  warmupMs?: number;
  cooldownMs?: number;
}

export async function swapUnderLoad(p: SwapPlan): Promise<{ result: LoadResult; took: number[] }> {
  const load = await p.load();
  let took: number[];
  try {
    await sleep(p.warmupMs ?? 500);
    took = await deploySeries(p);
    const end = performance.now() + 60_000;
    while (p.settled && !p.settled()) {
      if (performance.now() > end) throw new Error('the deploys did not settle within a minute');
      await sleep(20);
    }
    await sleep(p.cooldownMs ?? 500);
  } catch (e) {
    await load.stop();
    throw e;
  }
  return { result: await load.stop(), took };
}
