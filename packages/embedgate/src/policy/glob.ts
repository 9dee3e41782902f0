// Path globs for public paths and routes: `*` matches one non-empty segment, `**` any depth; nothing else is special.

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Compiles a glob into an anchored RegExp over normalized paths. */
export function compileGlob(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    if (glob.startsWith('**', i)) {
      source += '.*';
      i += 1;
    } else if (glob[i] === '*') {
      source += '[^/]+';
    } else {
      source += escapeRegExp(glob[i] as string);
    }
  }
  return new RegExp(`^${source}$`);
}

/** One matcher for many globs. */
export function compileGlobs(globs: string[]): (path: string) => boolean {
  if (globs.length === 0) return () => false;
  const combined = new RegExp(globs.map((g) => compileGlob(g).source).join('|'));
  return (path) => combined.test(path);
}
