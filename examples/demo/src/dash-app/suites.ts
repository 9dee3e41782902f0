// Dash's front end, served from node_modules under `_dash-component-suites/` at the URLs Python Dash uses:
// React and its companions under `dash/deps/`, the renderer under `dash/dash-renderer/build/`, the component suites
// under `dash/dcc/` and `dash/html/` (with the chunks they load next to them) and plotly.js at
// `plotly/package_data/plotly.min.js` (the URL dash-renderer gives dcc.Graph when assets are served locally).
// Files are found through Node's resolution, so this works from src/ (tsx) and from dist/ alike.
import { createReadStream, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

interface NpmPackage {
  dir: string;
  version: string;
}

function npmPackage(name: string): NpmPackage {
  const manifest = require.resolve(`${name}/package.json`);
  return { dir: dirname(manifest), version: (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version };
}

const polyfill = npmPackage('@babel/polyfill');
const react = npmPackage('react');
const reactDom = npmPackage('react-dom');
const propTypes = npmPackage('prop-types');
const renderer = npmPackage('dash-renderer');
const dcc = npmPackage('dash-core-components');
const htmlComponents = npmPackage('dash-html-components');
const plotly = npmPackage('plotly.js-dist-min');

/** Single files: URL (relative to `_dash-component-suites/`) → package and file inside it. */
const FILES = new Map<string, { pkg: NpmPackage; file: string }>([
  [`dash/deps/polyfill@${polyfill.version}.min.js`, { pkg: polyfill, file: 'dist/polyfill.min.js' }],
  [`dash/deps/react@${react.version}.min.js`, { pkg: react, file: 'umd/react.production.min.js' }],
  [`dash/deps/react-dom@${reactDom.version}.min.js`, { pkg: reactDom, file: 'umd/react-dom.production.min.js' }],
  [`dash/deps/prop-types@${propTypes.version}.min.js`, { pkg: propTypes, file: 'prop-types.min.js' }],
  ['plotly/package_data/plotly.min.js', { pkg: plotly, file: 'plotly.min.js' }],
]);

/** Whole build directories: the suites load their chunks (`async-graph.js`…) from next to their main script. */
const DIRECTORIES = [
  { url: 'dash/dash-renderer/build/', pkg: renderer, dir: 'build' },
  { url: 'dash/dcc/', pkg: dcc, dir: 'dash_core_components' },
  { url: 'dash/html/', pkg: htmlComponents, dir: 'dash_html_components' },
];

const FILE_NAME = /^[A-Za-z0-9_@-][A-Za-z0-9_@.-]*\.(js|js\.map)$/;
/** Dash's cache-busting name part, `v<version>m<modification time>`, inserted after the name's first dot. */
const FINGERPRINT = /^v[\w-]+m[0-9a-fA-F]+$/;

interface Located {
  pkg: NpmPackage;
  file: string;
  /** The URL carried a fingerprint, so its content never changes. */
  fingerprinted: boolean;
}

/** The file for a URL path relative to `_dash-component-suites/`, if there is one. */
function locate(path: string): Located | undefined {
  const slash = path.lastIndexOf('/') + 1;
  const parts = path.slice(slash).split('.');
  const fingerprinted = parts.length > 2 && FINGERPRINT.test(parts[1] ?? '');
  const name = fingerprinted ? [parts[0], ...parts.slice(2)].join('.') : parts.join('.');
  const single = FILES.get(path.slice(0, slash) + name);
  if (single !== undefined) return { pkg: single.pkg, file: join(single.pkg.dir, single.file), fingerprinted };
  const mount = DIRECTORIES.find((candidate) => candidate.url === path.slice(0, slash));
  if (mount === undefined || !FILE_NAME.test(name)) return undefined;
  return { pkg: mount.pkg, file: join(mount.pkg.dir, mount.dir, name), fingerprinted };
}

/** `dash/dcc/dash_core_components.js` → `dash/dcc/dash_core_components.v4_5_0m499162500.js`, as Dash names it. */
function withFingerprint(path: string): string {
  const found = locate(path);
  if (found === undefined) throw new Error(`no file for ${path}`);
  const stamp = `v${found.pkg.version.replace(/[^\w-]/g, '_')}m${Math.floor(statSync(found.file).mtimeMs / 1000)}`;
  const slash = path.lastIndexOf('/') + 1;
  const [first, ...rest] = path.slice(slash).split('.');
  return path.slice(0, slash) + [first, stamp, ...rest].join('.');
}

/**
 * The page's scripts in the order Dash 3+ emits them: the renderer's dependencies, then the renderer (it defines
 * `window.dash_component_api`, which the suites read as they load), then dcc and html.
 */
export const SCRIPTS: readonly string[] = [
  ...[...FILES.keys()].filter((path) => path.startsWith('dash/deps/')),
  'dash/dash-renderer/build/dash_renderer.min.js',
  'dash/dcc/dash_core_components.js',
  'dash/dcc/dash_core_components-shared.js',
  'dash/html/dash_html_components.min.js',
].map(withFingerprint);

/** Answers a GET for `path` (relative to `_dash-component-suites/`, no query); false when no such file exists. */
export function serveSuiteFile(path: string, req: IncomingMessage, res: ServerResponse): boolean {
  const found = locate(path);
  const stats = found === undefined ? undefined : statSync(found.file, { throwIfNoEntry: false });
  if (found === undefined || stats === undefined || !stats.isFile()) return false;
  const etag = `"${found.pkg.version}-${stats.size}"`;
  const headers = {
    'content-type': found.file.endsWith('.map') ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8',
    'cache-control': found.fingerprinted ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
    etag,
  };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers).end();
    return true;
  }
  res.writeHead(200, { ...headers, 'content-length': stats.size });
  createReadStream(found.file)
    .on('error', () => res.destroy())
    .pipe(res);
  return true;
}
