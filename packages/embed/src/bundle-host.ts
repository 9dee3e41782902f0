// Entry of dist/host.min.js (served as /_embedgate/host.js): an IIFE that sets window.embedgate and registers
// <embedgate-frame> when custom elements exist.
import { EMBED_EVENTS, attach, gatewayOrigin } from './attach.js';
import { defineElement } from './element.js';
import { PROTOCOL_VERSION } from './protocol.js';

const api = { attach, defineElement, gatewayOrigin, events: EMBED_EVENTS, version: PROTOCOL_VERSION };

declare global {
  interface Window {
    embedgate?: typeof api;
  }
}

window.embedgate ??= api;
defineElement();
