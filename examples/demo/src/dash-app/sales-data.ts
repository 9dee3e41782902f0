// The dashboard's made-up data: monthly sales per region (deterministic, derived from the region's name) and a
// small payroll table. Nothing here is real.

export const REGIONS = ['North', 'South', 'East', 'West'] as const;
export type Region = (typeof REGIONS)[number];

export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function isRegion(value: unknown): value is Region {
  return typeof value === 'string' && (REGIONS as readonly string[]).includes(value);
}

/** Sales in thousands for each month: a region-specific base, trend and seasonal swing. */
export function monthlySales(region: Region): number[] {
  const seed = [...region].reduce((sum, char) => sum + char.charCodeAt(0), 0);
  const base = 80 + (seed % 40);
  const trend = 1 + (seed % 7);
  const swing = 10 + (seed % 13);
  return MONTHS.map((_month, i) => Math.round(base + trend * i + swing * Math.sin((i + seed) / 2)));
}

export interface PayrollRow {
  name: string;
  role: string;
  salary: number;
}

export const PAYROLL: readonly PayrollRow[] = [
  { name: 'Ada Moreau', role: 'Regional manager', salary: 98000 },
  { name: 'Bo Lindqvist', role: 'Account executive', salary: 72500 },
  { name: 'Chen Wei', role: 'Sales analyst', salary: 64000 },
  { name: 'Dana Okafor', role: 'Account executive', salary: 71000 },
];
