// <embedgate-frame src="https://gw.example/sales/" gateway="https://gw.example"> with el.getToken = async () => …
// Creates the iframe inside itself (light DOM), attaches it, and re-dispatches embedgate:* events on itself.
import { EMBED_EVENTS, attach, type EmbedHandle, type GetToken } from './attach.js';

export interface EmbedgateFrameElement extends HTMLElement {
  getToken: GetToken | undefined;
  readonly handle: EmbedHandle | undefined;
  readonly iframe: HTMLIFrameElement | undefined;
  signOut(): void;
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
    signOut(): void {
      this.#handle?.signOut();
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
        const handle = this.#handle = attach(frame, { gateway, getToken: () => this.#getToken?.(), src });
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
