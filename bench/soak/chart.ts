// The soak chart as a standalone SVG: the gateway's RSS, heap used, open file descriptors and p99 latency over the
// run, one small panel each, with the verdict's limits as dashed lines.
import type { Sample } from './samples.js';

const PANEL_W = 380;
const PANEL_H = 150;
const PAD_L = 56;
const PAD_T = 70;
const GAP_X = 60;
const GAP_Y = 56;
const MB = 2 ** 20;

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Series {
  title: string;
  colour: string;
  points: Array<[number, number]>;
  /** A dashed horizontal line (a limit), with its label. */
  limit?: { value: number; label: string };
  /** Grey bars behind the line, 0..100 % of the panel's height, each over the 30 s before its time. */
  shares?: Array<[number, number]>;
}

/** A "nice" upper bound for the axis: 1, 2 or 5 × a power of ten, at least `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  return ([1, 2, 5, 10].map((m) => m * power).find((m) => m >= max) ?? 10 * power);
}

function panel(x0: number, y0: number, series: Series, maxT: number): string[] {
  const top = niceMax(Math.max(...series.points.map(([, v]) => v), series.limit?.value ?? 0) * 1.05);
  const px = (t: number): number => x0 + (t / maxT) * PANEL_W;
  const py = (v: number): number => y0 + PANEL_H - (v / top) * PANEL_H;
  const parts = [
    `<text x="${x0}" y="${y0 - 10}" font-weight="bold">${escape(series.title)}</text>`,
    `<rect x="${x0}" y="${y0}" width="${PANEL_W}" height="${PANEL_H}" fill="none" stroke="#d1d5db"/>`,
  ];
  for (const v of [0, top / 2, top]) {
    parts.push(`<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#f3f4f6"/>`,
      `<text x="${x0 - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end" fill="#4b5563">${Number(v.toPrecision(3))}</text>`);
  }
  for (const [t, share] of series.shares ?? []) {
    const height = (Math.min(100, Math.max(0, share)) / 100) * PANEL_H;
    parts.push(`<rect x="${px(Math.max(0, t - 30)).toFixed(1)}" y="${(y0 + PANEL_H - height).toFixed(1)}" width="${(px(t) - px(Math.max(0, t - 30))).toFixed(1)}" height="${height.toFixed(1)}" fill="#e5e7eb"/>`);
  }
  const step = [30, 60, 120, 300, 600, 1800, 3600].find((each) => maxT / each <= 6) ?? 7200;
  for (let t = 0; t <= maxT + 0.5; t += step) {
    parts.push(`<text x="${px(t).toFixed(1)}" y="${y0 + PANEL_H + 14}" text-anchor="middle" fill="#4b5563">${t % 60 === 0 ? `${t / 60} min` : `${t} s`}</text>`);
  }
  if (series.limit !== undefined) {
    const y = py(series.limit.value).toFixed(1);
    parts.push(`<line x1="${x0}" x2="${x0 + PANEL_W}" y1="${y}" y2="${y}" stroke="#dc2626" stroke-dasharray="4 3"/>`,
      `<text x="${x0 + PANEL_W - 4}" y="${Number(y) - 4}" text-anchor="end" fill="#dc2626">${escape(series.limit.label)}</text>`);
  }
  const path = series.points.map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
  parts.push(`<polyline points="${path}" fill="none" stroke="${series.colour}" stroke-width="2"/>`,
    ...series.points.map(([t, v]) => `<circle cx="${px(t).toFixed(1)}" cy="${py(v).toFixed(1)}" r="2.5" fill="${series.colour}"/>`));
  return parts;
}

export function soakChartSvg(samples: Sample[], base: Sample, fdBand: number, rssLimit: number, subtitle: string): string {
  const maxT = Math.max(60, ...samples.map((s) => s.t));
  const loaded = samples.filter((s) => s.traffic !== undefined);
  const series: Series[] = [
    {
      title: 'Gateway RSS (MB)', colour: '#2563eb', points: samples.map((s) => [s.t, s.gateway.rssBytes / MB]),
      limit: { value: (base.gateway.rssBytes / MB) * (1 + rssLimit), label: `minute 1 + ${rssLimit * 100} %` },
    },
    { title: 'Gateway heap used (MB)', colour: '#7c3aed', points: samples.map((s) => [s.t, s.gateway.heapUsedBytes / MB]) },
    {
      title: 'Gateway open file descriptors', colour: '#059669', points: samples.map((s) => [s.t, s.gateway.openFds]),
      limit: { value: base.gateway.openFds + fdBand, label: `minute 1 + ${fdBand}` },
    },
    {
      title: 'p99 latency, all requests (ms, per 30 s)', colour: '#d97706', points: loaded.map((s) => [s.t, s.traffic?.p99 ?? 0]),
      shares: loaded.map((s) => [s.t, s.machine.otherCpuPercent ?? 0]),
    },
  ];
  const width = PAD_L + 2 * PANEL_W + GAP_X + 30;
  const height = PAD_T + 2 * PANEL_H + GAP_Y + 66;
  const panels = series.flatMap((s, i) => panel(PAD_L + (i % 2) * (PANEL_W + GAP_X), PAD_T + Math.floor(i / 2) * (PANEL_H + GAP_Y), s, maxT));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12" fill="#111827">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">embedgate soak</text>`,
    `<text x="10" y="36" fill="#4b5563">${escape(subtitle)}</text>`,
    ...panels,
    `<text x="${PAD_L}" y="${height - 12}" fill="#4b5563">Time since the fixed-rate load started; a point every 30 s (0: just before it, after the peak measurement).</text>`,
    `<text x="${PAD_L}" y="${height - 28}" fill="#4b5563">Grey bars behind the p99: CPU time used by processes outside the soak, in % of all the machine's CPU time.</text>`,
    '</svg>',
    '',
  ].join('\n');
}
