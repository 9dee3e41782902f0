// How the host SDK gets the host half of the bridge: from this package (an app's bundler places it as it sees fit).
// The scripts the gateway serves load it from the gateway instead, only when an app's bridge connects
// (bridge-loader-remote.ts, swapped in by build.mjs), which keeps host.js small.
import type { hostBridge } from './host-bridge.js';

export type HostBridgeModule = { hostBridge: typeof hostBridge };

export const loadHostBridge = (_gatewayOrigin: string): Promise<HostBridgeModule> => import('./host-bridge.js');
