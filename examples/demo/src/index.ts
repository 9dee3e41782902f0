// @embedgate/demo: what `embedgate demo` runs besides the gateway and the IdP — the sample apps and the host portal.
export { startDashApp } from './dash-app/index.js';
export { NO_SELECTION, PAYROLL_PLACEHOLDER } from './dash-app/layout.js';
export { startStreamApp } from './stream-app/index.js';
export type { SampleApp, SampleAppOptions } from './shared/listen.js';
export { startPortal, type Portal, type PortalApp, type PortalOptions } from './portal/server.js';
