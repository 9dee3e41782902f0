// Small statistics helpers shared by the sections.

/** The value at quantile q (0..1) of the values (nearest rank, lower); `sorted` skips the copy and sort. */
export function quantile(values: readonly number[], q: number, sorted = false): number {
  if (values.length === 0) return Number.NaN;
  const ordered = sorted ? values : [...values].sort((a, b) => a - b);
  return ordered[Math.min(ordered.length - 1, Math.floor(q * ordered.length))] as number;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);
