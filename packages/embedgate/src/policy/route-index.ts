// Finds the first route whose globs match a path without trying every route: routes are filed under the directory
// their globs start with (the text before the first `*`, cut after its last `/`; globs always start with `/`), and a
// path only looks in the directories it lies in — a few buckets instead of a thousand regular expressions.

export interface IndexedRoute {
  paths: string[];
  matches: (path: string) => boolean;
}

/** `/sales/reports/**` → `/sales/reports/`; `/sales/r*` → `/sales/`. */
function literalDirectory(glob: string): string {
  const star = glob.indexOf('*');
  const literal = star === -1 ? glob : glob.slice(0, star);
  return literal.slice(0, literal.lastIndexOf('/') + 1);
}

export class RouteIndex<T extends IndexedRoute> {
  /** Directory → indexes of the routes filed there, ascending. */
  private readonly buckets = new Map<string, number[]>();

  constructor(private readonly routes: readonly T[]) {
    routes.forEach((route, index) => {
      for (const directory of new Set(route.paths.map(literalDirectory))) {
        const bucket = this.buckets.get(directory);
        if (bucket === undefined) this.buckets.set(directory, [index]);
        else bucket.push(index);
      }
    });
  }

  /** The first route, in configuration order, that matches `path` and passes `accept`. */
  find(path: string, accept: (route: T) => boolean): T | undefined {
    let candidates: number[] = [];
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const bucket = this.buckets.get(path.slice(0, slash + 1));
      if (bucket !== undefined) candidates = candidates.length === 0 ? bucket : [...candidates, ...bucket];
    }
    if (candidates.length === 0) return undefined;
    const ordered = candidates.length > 1 ? [...new Set(candidates)].sort((a, b) => a - b) : candidates;
    for (const index of ordered) {
      const route = this.routes[index] as T;
      if (route.matches(path) && accept(route)) return route;
    }
    return undefined;
  }
}
