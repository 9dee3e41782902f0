// Worker mode's WebSockets: a handshake carries neither the cookie nor the service worker's header, so each socket to
// the gateway's own host first gets a single-use ticket and offers it as a subprotocol. The app keeps calling
// `new WebSocket(url)`; it gets an object that behaves like one (events, handlers, send, close) and connects once the
// ticket is there. Sockets to other hosts are the browser's own, untouched.

const GATEWAY_PROTOCOL = 'embedgate';
const TICKET_PROTOCOL = 'embedgate.ticket.';
const EVENTS = ['open', 'message', 'error', 'close'] as const;

type Handler = ((this: WebSocket, event: Event) => unknown) | null;

/** Replaces window.WebSocket; `ticketFor(path)` resolves a ticket for a socket to that path of the gateway. */
export function useTicketedWebSockets(ticketFor: (path: string) => Promise<string | undefined>): void {
  const Native = window.WebSocket;

  class TicketedWebSocket extends EventTarget {
    static readonly CONNECTING = 0;
    static readonly OPEN = 1;
    static readonly CLOSING = 2;
    static readonly CLOSED = 3;
    readonly CONNECTING = 0;
    readonly OPEN = 1;
    readonly CLOSING = 2;
    readonly CLOSED = 3;
    readonly url: string;
    onopen: Handler = null;
    onmessage: Handler = null;
    onerror: Handler = null;
    onclose: Handler = null;
    #socket: WebSocket | undefined;
    #closed: [number, string] | undefined;
    #binaryType: BinaryType = 'blob';

    constructor(url: string | URL, protocols?: string | string[]) {
      super();
      const target = new URL(url, location.href);
      this.url = target.href;
      if (target.host !== location.host) return new Native(url, protocols) as unknown as TicketedWebSocket;
      const offered = protocols === undefined ? [] : typeof protocols === 'string' ? [protocols] : [...protocols];
      void ticketFor(target.pathname).catch(() => undefined).then((ticket) => {
        if (this.#closed) return this.#relay(new CloseEvent('close', { code: this.#closed[0], reason: this.#closed[1] }));
        const socket = new Native(target, ticket ? [...offered, GATEWAY_PROTOCOL, TICKET_PROTOCOL + ticket] : offered);
        socket.binaryType = this.#binaryType;
        this.#socket = socket;
        for (const type of EVENTS) socket.addEventListener(type, (event) => this.#relay(event));
      });
    }

    /** The socket's events, re-made for this object (a dispatched event cannot be dispatched again). */
    #relay(event: Event): void {
      const copy = event instanceof MessageEvent ? new MessageEvent('message', { data: event.data, origin: event.origin })
        : event instanceof CloseEvent ? new CloseEvent('close', { code: event.code, reason: event.reason, wasClean: event.wasClean })
          : new Event(event.type);
      const handler = this[`on${event.type}` as `on${typeof EVENTS[number]}`];
      handler?.call(this as unknown as WebSocket, copy);
      this.dispatchEvent(copy);
    }

    get readyState(): number {
      return this.#socket?.readyState ?? (this.#closed ? 3 : 0);
    }

    get protocol(): string {
      const chosen = this.#socket?.protocol ?? '';
      return chosen === GATEWAY_PROTOCOL ? '' : chosen;
    }

    get extensions(): string {
      return this.#socket?.extensions ?? '';
    }

    get bufferedAmount(): number {
      return this.#socket?.bufferedAmount ?? 0;
    }

    get binaryType(): BinaryType {
      return this.#binaryType;
    }

    set binaryType(type: BinaryType) {
      this.#binaryType = type;
      if (this.#socket) this.#socket.binaryType = type;
    }

    send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      if (!this.#socket) throw new DOMException('Still in CONNECTING state.', 'InvalidStateError');
      this.#socket.send(data);
    }

    close(code?: number, reason?: string): void {
      if (this.#socket) this.#socket.close(code, reason);
      else this.#closed ??= [code ?? 1000, reason ?? ''];
    }
  }

  window.WebSocket = TicketedWebSocket as unknown as typeof WebSocket;
}
