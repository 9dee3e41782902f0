// The mounted apps: finds which app a normalized path belongs to (longest prefix wins).
import type { AppConfig } from '../config/schema.js';
import { AppPolicy } from '../policy/app-policy.js';

export interface MountedApp {
  config: AppConfig;
  policy: AppPolicy;
  /** Upstream origin, e.g. http://127.0.0.1:8050. */
  origin: string;
  /** Upstream base path without a trailing slash ('' for none). */
  basePath: string;
}

export type AppMatch = { kind: 'app'; app: MountedApp } | { kind: 'redirect'; location: string } | { kind: 'none' };

export class AppTable {
  readonly apps: MountedApp[];

  constructor(configs: AppConfig[]) {
    this.apps = configs
      .map((config) => {
        const url = new URL(config.upstream);
        return { config, policy: new AppPolicy(config), origin: url.origin, basePath: url.pathname.replace(/\/$/, '') };
      })
      .sort((a, b) => b.config.prefix.length - a.config.prefix.length);
  }

  match(path: string): AppMatch {
    for (const app of this.apps) {
      if (path.startsWith(app.config.prefix)) return { kind: 'app', app };
      if (path === app.config.prefix.slice(0, -1)) return { kind: 'redirect', location: app.config.prefix };
    }
    return { kind: 'none' };
  }

  /** The path the upstream receives: unchanged, or without the prefix when `strip_prefix` is set. */
  static upstreamPath(app: MountedApp, path: string, query: string): string {
    const local = app.config.strip_prefix ? path.slice(app.config.prefix.length - 1) : path;
    return `${app.basePath}${local}${query}`;
  }
}
