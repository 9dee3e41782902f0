// Times one operation after a warm-up: in batches (the median slice's ns per call, for fast calls), or call by call.

const SLICES = 7;

async function measure(batch: () => Promise<void>, perBatch: number, ms: number): Promise<number> {
  const run = async (until: number): Promise<number> => {
    let calls = 0;
    const started = process.hrtime.bigint();
    do {
      await batch();
      calls += perBatch;
    } while (performance.now() < until);
    return Number(process.hrtime.bigint() - started) / calls;
  };
  await run(performance.now() + ms / 5);
  const slices: number[] = [];
  for (let i = 0; i < SLICES; i++) slices.push(await run(performance.now() + ms / SLICES));
  return slices.sort((a, b) => a - b)[Math.floor(SLICES / 2)] as number;
}

/** ns per call of a synchronous `op`, measured for about `ms` milliseconds. */
export function nsPerCall(op: () => unknown, ms: number, perBatch = 100): Promise<number> {
  return measure(async () => {
    for (let i = 0; i < perBatch; i++) op();
  }, perBatch, ms);
}

/** ns per call of an asynchronous `op`, each awaited before the next. */
export function nsPerAsyncCall(op: () => Promise<unknown>, ms: number, perBatch = 100): Promise<number> {
  return measure(async () => {
    for (let i = 0; i < perBatch; i++) await op();
  }, perBatch, ms);
}

/** Each call of `op` timed on its own for about `ms` milliseconds (after a warm-up): median and mean ns per call. */
export async function nsEachCall(op: () => unknown, ms: number): Promise<{ median: number; mean: number }> {
  const run = async (until: number): Promise<number[]> => {
    const times: number[] = [];
    do {
      const started = process.hrtime.bigint();
      await op();
      times.push(Number(process.hrtime.bigint() - started));
    } while (performance.now() < until);
    return times;
  };
  await run(performance.now() + ms / 5);
  const times = (await run(performance.now() + ms)).sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)] as number, mean: times.reduce((sum, t) => sum + t, 0) / times.length };
}
