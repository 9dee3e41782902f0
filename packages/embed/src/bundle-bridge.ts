// Entry of dist/bridge.min.js (served as /_embedgate/bridge.js): the app half of the bridge, started for the script
// element that loaded it. Defines window.embedgate.emit when the app may emit events.
import { startBridge } from './bridge.js';

startBridge();
