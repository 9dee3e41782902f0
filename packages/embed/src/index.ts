// @embedgate/embed — the message protocol shared by the host SDK (./host) and the frame script (./frame),
// plus the pure checks both halves use.
export * from './protocol.js';
export {
  isFrameMessage, isHostMessage, isOrigin, isSameOrigin, isTokenString, parseExpiry, parseOrigins, renewDelay,
  targetOrigins, type ParentInfo,
} from './checks.js';
