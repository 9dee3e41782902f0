// Loads oidc-provider, keeping its "unsupported runtime" notice for Node.js 20 (which embedgate supports) out of the logs.
import type * as OidcProvider from 'oidc-provider';

let loaded: Promise<typeof OidcProvider> | undefined;

export function loadOidcProvider(): Promise<typeof OidcProvider> {
  loaded ??= (async () => {
    const { warn } = console;
    console.warn = (...args: unknown[]) => {
      if (!String(args[0]).includes('oidc-provider WARNING: Unsupported runtime')) warn(...args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
    }
  })();
  return loaded;
}
