// A sample upstream for the demo: a sales dashboard that speaks Dash's HTTP protocol and runs Dash's real front
// end (dash-renderer, dash-core-components, dash-html-components, React and plotly.js, all served from npm).
// It is not Python Dash: a small Node server implements the routes the renderer calls, so the gateway can be shown
// in front of a genuine Dash client without a Python runtime.
export { startDashApp } from './server.js';
export type { SampleApp, SampleAppOptions } from '../shared/listen.js';
