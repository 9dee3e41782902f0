// @embedgate/embed/host — the host page half of the embed SDK.
export { attach, gatewayOrigin, EMBED_EVENTS } from './attach.js';
export type { AttachOptions, EmbedEventDetail, EmbedEventType, EmbedHandle, EmbedListener, GetToken } from './attach.js';
export { defineElement, type EmbedgateFrameElement } from './element.js';
export { PROTOCOL_VERSION } from './protocol.js';
