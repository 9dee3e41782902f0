// Entry of dist/frame.min.js (served as /_embedgate/frame.js): runs at once for the script element that loaded it.
// Defines no globals.
import { start } from './frame.js';

start();
