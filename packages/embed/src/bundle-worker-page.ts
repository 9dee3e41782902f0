// Entry of dist/worker-page.min.js (served as /_embedgate/worker-page.js). Defines no globals.
import { startWorkerPage } from './worker-page.js';

startWorkerPage();
