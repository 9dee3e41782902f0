// Shared option parsing for commands: --config FILE, --help, and a command's own string options, with usage
// errors as exit code 2.
import { parseArgs } from 'node:util';

export type ParsedOptions = { ok: true; config: string; values: Record<string, string | undefined> } | { ok: false; exitCode: number };

/** Prints the problem and the usage; exit code 2. */
export function usageError(message: string, usage: string): { ok: false; exitCode: number } {
  process.stderr.write(`embedgate: ${message}\n\n${usage}\n`);
  return { ok: false, exitCode: 2 };
}

/** `extra`: the command's own `--name VALUE` options, by name, with their one-letter short forms. */
export function parseConfigOption(args: string[], usage: string, extra: Record<string, string> = {}): ParsedOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, strict: true, options: {
      config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(Object.entries(extra).map(([name, short]) => [name, { type: 'string' as const, short }])),
    } }));
  } catch (error) {
    return usageError((error as Error).message, usage);
  }
  if (values.help === true) {
    process.stdout.write(`${usage}\n`);
    return { ok: false, exitCode: 0 };
  }
  if (typeof values.config !== 'string') return usageError('--config FILE is required', usage);
  const own = Object.fromEntries(Object.keys(extra).map((name) => [name, values[name] as string | undefined]));
  return { ok: true, config: values.config, values: own };
}
