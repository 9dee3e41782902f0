// <embedgate-frame src="https://gw.example/sales/" gateway="https://gw.example" auto-resize> with
// el.getToken = async () => … (and el.initialProps = {…}). Creates the iframe inside itself (light DOM), attaches it,
// re-dispatches embedgate:* events on itself, and offers the handle's setProps, navigate and send.
import { EMBED_EVENTS, attach, type EmbedHandle, type GetToken } from './attach.js';
import type { JsonValue } from './bridge-protocol.js';

export interface EmbedgateFrameElement extends HTMLElement {
  getToken: GetToken | undefined;
  /** Props to set once the app's bridge is ready (read when the element attaches). */
  initialProps: Record<string, Record<string, JsonValue>> | undefined;
  readonly handle: EmbedHandle | undefined;
  readonly iframe: HTMLIFrameElement | undefined;
  signOut(): void;
  setProps(id: string, props: Record<string, JsonValue>): Promise<void>;
  navigate(path: string): Promise<void>;
  send(name: string, data?: JsonValue): Promise<void>;
}

/** Registers the custom element (default name `embedgate-frame`); does nothing without customElements or if taken. */
export function defineElement(name = 'embedgate-frame'): void {
  if (typeof customElements === 'undefined' || customElements.get(name)) return;

  class EmbedgateFrame extends HTMLElement implements EmbedgateFrameElement {
    static observedAttributes = ['src', 'gateway', 'title'];
    #getToken: GetToken | undefined;
    #frame: HTMLIFrameElement | undefined;
    #handle: EmbedHandle | undefined;

    get getToken(): GetToken | undefined {
      return this.#getToken;
    }
    set getToken(fn: GetToken | undefined) {
      this.#getToken = fn;
      this.#update();
    }
    get handle(): EmbedHandle | undefined {
      return this.#handle;
    }
    get iframe(): HTMLIFrameElement | undefined {
      return this.#frame;
    }
    // `declare`: no field initializer, which would wipe a value set on the element before it was upgraded.
    declare initialProps: Record<string, Record<string, JsonValue>> | undefined;
    signOut(): void {
      this.#handle?.signOut();
    }
    setProps(id: string, props: Record<string, JsonValue>): Promise<void> {
      return this.#bridge((handle) => handle.setProps(id, props));
    }
    navigate(path: string): Promise<void> {
      return this.#bridge((handle) => handle.navigate(path));
    }
    send(name: string, data?: JsonValue): Promise<void> {
      return this.#bridge((handle) => handle.send(name, data));
    }
    #bridge(call: (handle: EmbedHandle) => Promise<void>): Promise<void> {
      return this.#handle ? call(this.#handle) : Promise.reject(new Error('embedgate-frame: not attached yet (set src, gateway and getToken)'));
    }
    connectedCallback(): void {
      // A getToken assigned before the element was upgraded sits on the instance; move it behind the setter.
      if (Object.prototype.hasOwnProperty.call(this, 'getToken')) {
        const fn = (this as { getToken?: GetToken }).getToken;
        delete (this as { getToken?: GetToken }).getToken;
        this.#getToken = fn;
      }
      this.#update();
    }
    disconnectedCallback(): void {
      this.#teardown();
    }
    attributeChangedCallback(name: string): void {
      if (name === 'gateway') this.#teardown();
      this.#update();
    }
    #teardown(): void {
      this.#handle?.detach();
      this.#frame?.remove();
      this.#handle = this.#frame = undefined;
    }
    #update(): void {
      const src = this.getAttribute('src');
      const gateway = this.getAttribute('gateway');
      if (!this.isConnected || !src || !gateway || !this.#getToken) return;
      let frame = this.#frame;
      if (!frame) {
        frame = this.#frame = document.createElement('iframe');
        Object.assign(frame.style, { border: '0', width: '100%', height: '100%', display: 'block' });
        frame.title = this.getAttribute('title') ?? 'Embedded app';
        this.append(frame);
        // attach() makes the session first and then navigates the new iframe to src.
        const handle = this.#handle = attach(frame, {
          gateway, getToken: () => this.#getToken?.(), src, initialProps: this.initialProps, autoResize: this.hasAttribute('auto-resize'),
        });
        for (const type of EMBED_EVENTS) {
          handle.on(type, (detail) => this.dispatchEvent(new CustomEvent('embedgate:' + type, { detail })));
        }
        return;
      }
      frame.title = this.getAttribute('title') ?? 'Embedded app';
      if (frame.getAttribute('src') !== src) frame.src = src;
    }
  }
  customElements.define(name, EmbedgateFrame);
}
