// The host half of the bridge for the scripts the gateway serves (host.js, host.mjs): an ES module from the gateway,
// /_embedgate/host-bridge.mjs at the version it was built with (immutable, so a browser fetches it once).
import type { HostBridgeModule } from './bridge-loader.js';

/** Set by build.mjs: /_embedgate/host-bridge.mjs?v=<the module's version>. */
declare const EMBEDGATE_HOST_BRIDGE_PATH: string;

export const loadHostBridge = (gatewayOrigin: string): Promise<HostBridgeModule> =>
  import(gatewayOrigin + EMBEDGATE_HOST_BRIDGE_PATH) as Promise<HostBridgeModule>;
