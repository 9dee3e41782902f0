// Reads a YAML config file, expands ${ENV} references and validates it, reporting every problem by field.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { withLoginDefaults } from './login-defaults.js';
import { configSchema, type GatewayConfig } from './schema.js';

/** A configuration problem; the CLI prints `message` and exits with code 2. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

/** Renders a zod path as `apps[0].allow.roles`. */
export function fieldName(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

const ENV_REF = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${NAME}` and `${NAME:-default}` in every string value; `$$` stands for a literal `$`. */
export function expandEnv(value: unknown, env: NodeJS.ProcessEnv, path: PropertyKey[] = [], problems: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$$') return '$';
      const found = env[name as string];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${fieldName(path)}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => expandEnv(item, env, [...path, i], problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expandEnv(item, env, [...path, key], problems)]));
  }
  return value;
}

/** One line per schema problem, each naming its field (under `basePath`, e.g. ['idp']). */
export function describeIssues(error: z.ZodError, basePath: PropertyKey[] = []): string[] {
  return error.issues.map((issue) => {
    const field = fieldName([...basePath, ...issue.path]);
    if (issue.code === 'unrecognized_keys') {
      return `${field}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) return `${field}: is required`;
    return `${field}: ${issue.message}`;
  });
}

/** Validates an already-parsed config object (after env expansion) and fills in the defaults derived from it. */
export function parseConfig(raw: unknown): GatewayConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues(result.error));
  return withLoginDefaults(result.data);
}

/** Parses YAML text into a plain object, with env expansion. */
export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env, source = 'config'): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const where = e.linePos?.[0] ? `${source}:${e.linePos[0].line}:${e.linePos[0].col}` : source;
      return `${where}: invalid YAML: ${e.message.split('\n')[0]}`;
    }));
  }
  const data: unknown = doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([`${source}: the file must hold a YAML mapping (key: value pairs)`]);
  }
  const problems: string[] = [];
  const expanded = expandEnv(data, env, [], problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return expanded;
}

/** Loads, expands and validates the gateway config file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  return parseConfig(parseConfigText(text, env, file));
}
