// The HTML page that boots dash-renderer, laid out like Python Dash's index: the React mount point, the
// `_dash-config` JSON (whose `requests_pathname_prefix` makes every later request stay under the prefix), the
// scripts in Dash's order and finally the inline `new DashRenderer()`.
import { SCRIPTS } from './suites.js';

/** `<` is escaped so that no value can close the script element the JSON sits in. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

export function renderIndexPage(prefix: string): string {
  const config = {
    url_base_pathname: prefix,
    requests_pathname_prefix: prefix,
    serve_locally: true,
    ui: false,
    props_check: false,
    show_undo_redo: false,
    suppress_callback_exceptions: false,
    update_title: 'Updating...',
    children_props: {},
  };
  const scripts = SCRIPTS.map((path) => `<script src="${prefix}_dash-component-suites/${path}"></script>`);
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="UTF-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>Sales dashboard</title>',
    '<link rel="icon" href="data:,">',
    '</head>',
    '<body>',
    '<div id="react-entry-point"><div class="_dash-loading">Loading...</div></div>',
    '<footer>',
    `<script id="_dash-config" type="application/json">${scriptJson(config)}</script>`,
    ...scripts,
    '<script id="_dash-renderer" type="application/javascript">var renderer = new DashRenderer();</script>',
    '</footer>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
