// Entry of dist/bootstrap.min.js (inlined into the bootstrap page): runs at once for the script element that holds
// it. Defines no globals.
import { startBootstrap } from './bootstrap.js';

startBootstrap();
