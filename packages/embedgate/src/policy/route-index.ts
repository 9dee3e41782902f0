// Finds the first route whose globs match a path without trying every route: a glob without `*` is filed under its
// exact path, any other under the directory it starts with (the text before the first `*`, cut after its last `/`;
// globs always start with `/`). A path looks up itself and the directories it lies in — a few buckets instead of a
// thousand regular expressions.

export interface IndexedRoute {
  paths: string[];
  matches: (path: string) => boolean;
}

/** `/sales/reports/**` → `/sales/reports/`; `/sales/r*` → `/sales/`; `/sales/about` → itself (exact). */
function bucketOf(glob: string): { exact: boolean; key: string } {
  const star = glob.indexOf('*');
  if (star === -1) return { exact: true, key: glob };
  const literal = glob.slice(0, star);
  return { exact: false, key: literal.slice(0, literal.lastIndexOf('/') + 1) };
}

export class RouteIndex<T extends IndexedRoute> {
  /** Exact path, and directory → indexes of the routes filed there, ascending. */
  private readonly exact = new Map<string, number[]>();
  private readonly directories = new Map<string, number[]>();

  constructor(private readonly routes: readonly T[]) {
    routes.forEach((route, index) => {
      for (const glob of route.paths) {
        const { exact, key } = bucketOf(glob);
        const map = exact ? this.exact : this.directories;
        const bucket = map.get(key);
        if (bucket === undefined) map.set(key, [index]);
        else if (bucket.at(-1) !== index) bucket.push(index);
      }
    });
  }

  /** The first route, in configuration order, that matches `path` and passes `accept`. */
  find(path: string, accept: (route: T) => boolean): T | undefined {
    let candidates: number[] = this.exact.get(path) ?? [];
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const bucket = this.directories.get(path.slice(0, slash + 1));
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
