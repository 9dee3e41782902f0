// A sample upstream for the demo: a live page that draws values its server pushes over a WebSocket every 500 ms,
// showing which user the gateway forwarded on the page request and on the WebSocket handshake.
export { startStreamApp } from './server.js';
export type { SampleApp, SampleAppOptions } from '../shared/listen.js';
