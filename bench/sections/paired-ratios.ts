// The throughput ratios the targets compare (bearer against the bare proxy, the embedded paths against bearer, …),
// each measured in blocks of four short peak runs in A B B A order: the two rows take turns within seconds, so a
// machine that speeds up or slows down steadily over a block weighs on both alike. The median block counts.
import { assertClean, load } from '../load.js';
import type { Timing } from '../options.js';
import type { PairedRatio } from '../results.js';
import { median } from '../stats.js';
import type { HttpConfig } from '../world.js';

/** [measured, against]: the ratios the targets read, where both rows are in the table. */
export const RATIO_PAIRS: ReadonlyArray<readonly [HttpConfig['id'], HttpConfig['id']]> = [
  ['bearer', 'bare'],
  ['bearer', 'express'],
  ['cookie', 'bearer'],
  ['handle', 'bearer'],
  ['dash', 'bearer'],
];

async function responses(config: HttpConfig, timing: Timing): Promise<number> {
  const figures = await load(config.target, { connections: timing.peakConnections, seconds: timing.pairSeconds });
  assertClean(config.label, figures);
  return figures.responses;
}

/** One A B B A block: the measured row's responses over the reference row's, from the same 4 × pairSeconds. */
async function block(measured: HttpConfig, against: HttpConfig, timing: Timing): Promise<number> {
  const first = await responses(against, timing);
  const measuredResponses = await responses(measured, timing) + await responses(measured, timing);
  return measuredResponses / (first + await responses(against, timing));
}

export async function pairedRatios(configs: HttpConfig[], timing: Timing, log: (line: string) => void): Promise<PairedRatio[]> {
  const byId = new Map(configs.map((config) => [config.id, config]));
  const ratios: PairedRatio[] = [];
  for (const [measuredId, againstId] of RATIO_PAIRS) {
    const measured = byId.get(measuredId);
    const against = byId.get(againstId);
    if (measured === undefined || against === undefined) continue;
    const blocks: number[] = [];
    for (let i = 0; i < timing.pairBlocks; i++) blocks.push(await block(measured, against, timing));
    const ratio = median(blocks);
    log(`paired: ${measured.label} / ${against.label}: ${ratio.toFixed(2)}× (blocks ${blocks.map((b) => b.toFixed(2)).join(', ')})`);
    ratios.push({ measured: measuredId, against: againstId, ratio, blocks });
  }
  return ratios;
}
