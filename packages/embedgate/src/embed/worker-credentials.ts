// The credentials of cookieless (worker-mode) embedding: the session handle the frame's service worker puts on every
// request of the frame, and the single-use ticket a WebSocket handshake carries in Sec-WebSocket-Protocol (a browser
// lets script set no other header there, and the service worker does not see WebSockets).
import type { IncomingMessage } from 'node:http';

/** The session handle: the same secret as the embed session cookie's value. Gateway-owned, so never forwarded. */
export const SESSION_HANDLE_HEADER = 'x-embedgate-session';
/** Offered as the WebSocket subprotocol `embedgate.ticket.<ticket>`; never forwarded to the app. */
const TICKET_PROTOCOL = 'embedgate.ticket.';
/**
 * Offered with the ticket, and chosen by the gateway when the app chooses no subprotocol: a browser that offered
 * subprotocols fails a handshake whose answer names none.
 */
export const GATEWAY_PROTOCOL = 'embedgate';
/**
 * Set by the service worker on a frame navigation it fetches again (the browser sends that fetch as Sec-Fetch-Mode:
 * same-origin, Sec-Fetch-Dest: empty): `iframe` or `document`, what the navigation was. Only the frame's own code can
 * send a custom header, and it only makes the gateway answer as it answers a page load (HTML errors, the bootstrap).
 */
export const WORKER_NAVIGATION_HEADER = 'x-embedgate-navigation';

/** A ticket is good for one handshake within this time. */
export const TICKET_SECONDS = 30;

/** The session handle of a request, if it carries exactly one. */
export function sessionHandleOf(req: IncomingMessage): string | undefined {
  const value = req.headers[SESSION_HANDLE_HEADER];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** What a navigation the service worker fetched again was (`iframe`, `document`), or undefined for other requests. */
export function workerNavigationOf(req: IncomingMessage): string | undefined {
  const value = req.headers[WORKER_NAVIGATION_HEADER];
  return typeof value === 'string' && req.headers['sec-fetch-mode'] === 'same-origin' && sessionHandleOf(req) !== undefined ? value : undefined;
}

function offered(req: IncomingMessage): string[] {
  return String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
}

/** The ticket a WebSocket handshake offers, if any (other requests never authenticate with one). */
export function ticketOf(req: IncomingMessage): string | undefined {
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return undefined;
  return offered(req).find((p) => p.startsWith(TICKET_PROTOCOL))?.slice(TICKET_PROTOCOL.length);
}

/** The subprotocols the app is offered: the client's, less the gateway's own. */
export function appProtocols(req: IncomingMessage): string[] {
  return offered(req).filter((p) => p !== GATEWAY_PROTOCOL && !p.startsWith(TICKET_PROTOCOL));
}

/** The subprotocol to answer the browser with: the app's choice, else the gateway's when the browser offered it. */
export function answeredProtocol(offeredByClient: Set<string>, appChoice: string): string | false {
  if (appChoice !== '') return appChoice;
  return offeredByClient.has(GATEWAY_PROTOCOL) ? GATEWAY_PROTOCOL : false;
}
