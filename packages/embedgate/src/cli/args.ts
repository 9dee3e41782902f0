// Shared option parsing for commands: --config FILE and --help, with usage errors as exit code 2.
import { parseArgs } from 'node:util';

export type ParsedOptions = { ok: true; config: string } | { ok: false; exitCode: number };

export function parseConfigOption(args: string[], usage: string): ParsedOptions {
  let values: { config?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (error) {
    process.stderr.write(`embedgate: ${(error as Error).message}\n\n${usage}\n`);
    return { ok: false, exitCode: 2 };
  }
  if (values.help === true) {
    process.stdout.write(`${usage}\n`);
    return { ok: false, exitCode: 0 };
  }
  if (values.config === undefined) {
    process.stderr.write(`embedgate: --config FILE is required\n\n${usage}\n`);
    return { ok: false, exitCode: 2 };
  }
  return { ok: true, config: values.config };
}
