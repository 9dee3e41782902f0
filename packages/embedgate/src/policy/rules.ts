// Compiles allow/deny rules into predicates over an identity; several criteria in one rule must all hold.
import type { RuleInput } from '../config/schema.js';
import type { Identity } from '../identity/identity.js';
import { readClaim } from '../identity/roles.js';

export type Predicate = (identity: Identity) => boolean;

type ClaimScalar = string | number | boolean;

/** `local@domain` with exactly one "@"; anything else has no domain and matches no domain rule. */
export function emailDomain(email: string): string | undefined {
  const parts = email.split('@');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return undefined;
  return (parts[1] as string).toLowerCase();
}

function domainMatches(domain: string, pattern: string): boolean {
  const wanted = pattern.toLowerCase();
  if (wanted.startsWith('*.')) return domain.endsWith(wanted.slice(1)) && domain.length > wanted.length - 1;
  return domain === wanted;
}

function claimMatches(actual: unknown, wanted: ClaimScalar[]): boolean {
  const values = Array.isArray(actual) ? actual : [actual];
  return values.some((value) => wanted.some((w) => value === w));
}

function criteria(rule: RuleInput): Predicate[] {
  const checks: Predicate[] = [];
  if (rule.authenticated === true) checks.push(() => true);
  if (rule.roles) {
    const roles = rule.roles;
    checks.push((id) => roles.some((role) => id.roles.has(role)));
  }
  if (rule.scopes) {
    const scopes = rule.scopes;
    checks.push((id) => scopes.every((scope) => id.scopes.has(scope)));
  }
  if (rule.users) {
    const users = new Set(rule.users);
    checks.push((id) => users.has(id.subject));
  }
  if (rule.emails) {
    const emails = new Set(rule.emails.map((e) => e.toLowerCase()));
    checks.push((id) => id.email !== undefined && id.emailVerified !== false && emailDomain(id.email) !== undefined && emails.has(id.email.toLowerCase()));
  }
  if (rule.email_domains) {
    const patterns = rule.email_domains;
    checks.push((id) => {
      if (id.email === undefined || id.emailVerified === false) return false;
      const domain = emailDomain(id.email);
      return domain !== undefined && patterns.some((p) => domainMatches(domain, p));
    });
  }
  if (rule.email_verified !== undefined) {
    const wanted = rule.email_verified;
    checks.push((id) => id.emailVerified === wanted);
  }
  if (rule.claims) {
    for (const [name, value] of Object.entries(rule.claims)) {
      const wanted = Array.isArray(value) ? value : [value];
      checks.push((id) => claimMatches(readClaim(id.claims, name), wanted));
    }
  }
  if (rule.any) {
    const any = rule.any.map(compileRule);
    checks.push((id) => any.some((p) => p(id)));
  }
  if (rule.all) {
    const all = rule.all.map(compileRule);
    checks.push((id) => all.every((p) => p(id)));
  }
  if (rule.not) {
    const not = compileRule(rule.not);
    checks.push((id) => !not(id));
  }
  return checks;
}

export function compileRule(rule: RuleInput): Predicate {
  const checks = criteria(rule);
  if (checks.length === 1) return checks[0] as Predicate;
  return (identity) => checks.every((check) => check(identity));
}
