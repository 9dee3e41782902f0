// An app's compiled policy: public paths, the app-wide rule, per-path routes and Dash callback rules.
import type { AppConfig } from '../config/schema.js';
import type { Identity } from '../identity/identity.js';
import type { Denial } from '../http/respond.js';
import { compileOutputPattern } from './dash.js';
import { compileGlobs } from './glob.js';
import { RouteIndex } from './route-index.js';
import { compileRule, type Predicate } from './rules.js';

interface CompiledRoute {
  paths: string[];
  matches: (path: string) => boolean;
  methods: Set<string> | undefined;
  allow: Predicate | undefined;
  deny: Predicate | undefined;
}

interface CompiledCallbackRule {
  matches: (output: string) => boolean;
  output: string;
  allow: Predicate | undefined;
  deny: Predicate | undefined;
}

const forbidden = (error: string, message: string): Denial => ({ status: 403, error, message });

export class AppPolicy {
  readonly isPublic: (path: string) => boolean;
  private readonly allow: Predicate;
  private readonly deny: Predicate | undefined;
  private readonly routes: RouteIndex<CompiledRoute>;
  private readonly callbackRules: CompiledCallbackRule[];
  readonly dashMaxBodyBytes: number;

  constructor(app: AppConfig) {
    this.isPublic = compileGlobs(app.public);
    this.allow = compileRule(app.allow);
    this.deny = app.deny && compileRule(app.deny);
    this.routes = new RouteIndex(app.routes.map((route) => ({
      paths: route.paths,
      matches: compileGlobs(route.paths),
      methods: route.methods && new Set(route.methods),
      allow: route.allow && compileRule(route.allow),
      deny: route.deny && compileRule(route.deny),
    })));
    this.callbackRules = (app.dash?.callbacks ?? []).map((rule) => ({
      matches: compileOutputPattern(rule.output),
      output: rule.output,
      allow: rule.allow && compileRule(rule.allow),
      deny: rule.deny && compileRule(rule.deny),
    }));
    this.dashMaxBodyBytes = app.dash?.max_body_bytes ?? 0;
  }

  /** True when callback bodies must be read before the request may go upstream. */
  inspectsCallback(path: string, method: string): boolean {
    return this.callbackRules.length > 0 && method === 'POST' && path.endsWith('/_dash-update-component');
  }

  /** The app rule, then the first route that matches the path and method; undefined means allowed. */
  authorize(identity: Identity, path: string, method: string): Denial | undefined {
    if (this.deny?.(identity)) return forbidden('denied_by_policy', 'A deny rule of this app matches you.');
    if (!this.allow(identity)) return forbidden('forbidden', 'You are signed in but not allowed to use this app.');
    const route = this.routes.find(path, (r) => r.methods === undefined || r.methods.has(method));
    if (route === undefined) return undefined;
    if (route.deny?.(identity)) return forbidden('denied_by_policy', 'A deny rule for this path matches you.');
    if (route.allow && !route.allow(identity)) return forbidden('forbidden', 'You are not allowed to use this part of the app.');
    return undefined;
  }

  /** Every output of a callback must be allowed by each rule that names it. */
  authorizeOutputs(identity: Identity, outputs: string[]): Denial | undefined {
    for (const output of outputs) {
      for (const rule of this.callbackRules) {
        if (!rule.matches(output)) continue;
        if (rule.deny?.(identity) || (rule.allow && !rule.allow(identity))) {
          return forbidden('callback_forbidden', `You are not allowed to run the callback for ${rule.output}.`);
        }
      }
    }
    return undefined;
  }
}
