// The results chart as a standalone SVG: peak throughput and p99 latency at the fixed rate, one bar per configuration.
import type { HttpResults } from './results.js';

const ROW = 26;
const LABEL_WIDTH = 270;
const PANEL_WIDTH = 300;
const GAP = 40;
const TOP = 76;
/** Room right of the second panel for the longest bar's label, e.g. "16.15 (saturated)". */
const RIGHT_MARGIN = 110;

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function colour(id: string): string {
  if (id === 'bearer' || id === 'lean' || id === 'cookie' || id === 'handle' || id === 'dash' || id === 'nginx-auth') return '#2563eb';
  if (id === 'express') return '#d97706';
  return '#9ca3af';
}

/** One panel of horizontal bars starting at x, scaled to the largest value. */
function panel(x: number, title: string, values: Array<{ id: string; value: number; text: string }>): string[] {
  const max = Math.max(...values.map((v) => v.value));
  const parts = [`<text x="${x}" y="${TOP - 16}" font-weight="bold">${escape(title)}</text>`];
  values.forEach((v, i) => {
    const y = TOP + i * ROW;
    const width = Math.max(1, (v.value / max) * (PANEL_WIDTH - 70));
    parts.push(`<rect x="${x}" y="${y}" width="${width.toFixed(1)}" height="${ROW - 8}" fill="${colour(v.id)}"/>`,
      `<text x="${(x + width + 6).toFixed(1)}" y="${y + ROW - 12}">${escape(v.text)}</text>`);
  });
  return parts;
}

export function chartSvg(http: HttpResults, subtitle: string): string {
  const width = LABEL_WIDTH + 2 * PANEL_WIDTH + GAP + RIGHT_MARGIN;
  const height = TOP + http.rows.length * ROW + 16;
  const labels = http.rows.map((row, i) => `<text x="${LABEL_WIDTH - 10}" y="${TOP + i * ROW + ROW - 12}" text-anchor="end">${escape(row.label)}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12" fill="#111827">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">embedgate benchmark</text>`,
    `<text x="10" y="36" fill="#4b5563">${escape(subtitle)}</text>`,
    ...labels,
    ...panel(LABEL_WIDTH, 'Peak throughput (req/s, higher is better)',
      http.rows.map((r) => ({ id: r.id, value: r.peak.rps, text: Math.round(r.peak.rps).toLocaleString('en-US') }))),
    ...panel(LABEL_WIDTH + PANEL_WIDTH + GAP, `p99 at ${Math.round(http.rate).toLocaleString('en-US')} req/s (ms, lower is better)`,
      http.rows.map((r) => ({ id: r.id, value: r.atRate.p99, text: `${r.atRate.p99.toFixed(2)}${r.atRate.rps < 0.95 * http.rate ? ' (saturated)' : ''}` }))),
    '</svg>',
    '',
  ].join('\n');
}
