// Entry of dist/host.module.min.js (served as /_embedgate/host.mjs): the host SDK as an ES module, for pages that
// `import { attach } from 'https://gw.example.com/_embedgate/host.mjs'` without a bundler. It registers
// <embedgate-frame> as the classic script does, and sets no global.
import { defineElement } from './element.js';

export { attach, gatewayOrigin, EMBED_EVENTS as events } from './attach.js';
export { defineElement } from './element.js';
export { PROTOCOL_VERSION as version } from './protocol.js';

defineElement();
