// Reads which outputs a Dash callback request targets, so per-output rules can decide before the app runs.

export type DashOutputs = { ok: true; outputs: string[] } | { ok: false; detail: string };

/** Dash's string form of a component id: plain ids as is, pattern-matching (dict) ids as sorted JSON. */
function idString(id: unknown): string | undefined {
  if (typeof id === 'string') return id;
  if (id !== null && typeof id === 'object' && !Array.isArray(id)) {
    const entries = Object.entries(id as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return JSON.stringify(Object.fromEntries(entries));
  }
  return undefined;
}

/** Flattens the `outputs` field: one spec, a list of specs, or lists of lists for ALL wildcards. */
function collectOutputSpecs(value: unknown, into: string[]): boolean {
  if (Array.isArray(value)) return value.every((item) => collectOutputSpecs(item, into));
  if (value === null || typeof value !== 'object') return false;
  const spec = value as { id?: unknown; property?: unknown };
  const id = idString(spec.id);
  if (id === undefined || typeof spec.property !== 'string') return false;
  into.push(`${id}.${spec.property}`);
  return true;
}

/**
 * Every output a `_dash-update-component` body names: the `output` string that Dash dispatches on
 * (`..a.children...b.figure..` for multi-output callbacks) and the concrete `outputs` list.
 */
export function parseDashOutputs(body: Buffer): DashOutputs {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, detail: 'the callback body is not JSON' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, detail: 'the callback body is not a JSON object' };
  const { output, outputs } = parsed as { output?: unknown; outputs?: unknown };
  if (typeof output !== 'string' || output === '') return { ok: false, detail: 'the callback body has no "output"' };
  const names = output.startsWith('..') && output.endsWith('..') && output.length > 4
    ? output.slice(2, -2).split('...')
    : [output];
  if (names.some((name) => name === '')) return { ok: false, detail: 'the callback "output" is malformed' };
  if (outputs !== undefined && !collectOutputSpecs(outputs, names)) return { ok: false, detail: 'the callback "outputs" is malformed' };
  return { ok: true, outputs: [...new Set(names)] };
}

/** Matches an output rule (`payroll.children`, `payroll` for any property, `*` wildcards) against `id.property`. */
export function compileOutputPattern(pattern: string): (output: string) => boolean {
  const source = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  const full = new RegExp(`^${source}$`);
  if (pattern.includes('.')) return (output) => full.test(output);
  return (output) => {
    const dot = output.lastIndexOf('.');
    return full.test(output) || (dot > 0 && full.test(output.slice(0, dot)));
  };
}
