// `embedgate check-config`: validates a config file and reports every problem by field.
import { ConfigError, loadConfigFile } from '../config/load.js';
import { configWarnings } from '../config/warnings.js';
import { parseConfigOption } from './args.js';

const USAGE = `Usage: embedgate check-config --config FILE

Validates the YAML config (after \${ENV} expansion) and exits 0 when it is valid, 2 when it is not,
naming each field that is wrong. Settings that are valid but cannot work as written (a sign-in whose access
tokens the gateway would refuse, say) are printed as warnings.`;

/** Prints config problems the same way for every command; returns exit code 2. */
export function reportConfigError(file: string, error: ConfigError): number {
  process.stderr.write(`embedgate: invalid configuration in ${file}:\n${error.problems.map((p) => `  - ${p}`).join('\n')}\n`);
  return 2;
}

export async function checkConfigCommand(args: string[]): Promise<number> {
  const options = parseConfigOption(args, USAGE);
  if (!options.ok) return options.exitCode;
  try {
    const config = loadConfigFile(options.config);
    process.stdout.write(`${options.config}: valid (${config.issuers.length} issuer(s), ${config.apps.length} app(s): ${config.apps.map((a) => `${a.name} at ${a.prefix}`).join(', ')})\n`);
    const warnings = configWarnings(config);
    if (warnings.length > 0) process.stderr.write(`embedgate: warnings for ${options.config}:\n${warnings.map((w) => `  - ${w}`).join('\n')}\n`);
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) return reportConfigError(options.config, error);
    throw error;
  }
}
