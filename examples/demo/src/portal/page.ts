// The host portal's one HTML page (sign-in state, the embedded apps with the dashboard's region picker and selection
// panel, the attacker's view); the script does the rest.
import { REGIONS } from '../dash-app/sales-data.js';

const REGION_OPTIONS = REGIONS.map((region) => `<option>${region}</option>`).join('');

export const PORTAL_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme portal — embedgate demo</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: #1d2330; background: #f4f6fa; }
  header { display: flex; align-items: center; gap: 1rem; padding: .75rem 1.25rem; background: #1d2330; color: #fff; }
  header h1 { font-size: 1.1rem; margin: 0; flex: 1; }
  header button { font: inherit; padding: .35rem .9rem; border: 0; border-radius: 4px; cursor: pointer; }
  #who { font-size: .9rem; }
  .roles { display: inline-block; margin-left: .35rem; padding: 0 .4rem; border-radius: 3px; background: #3b82f6; font-size: .8rem; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 20rem; gap: 1rem; padding: 1rem 1.25rem; }
  section, aside { background: #fff; border: 1px solid #dde2ea; border-radius: 6px; padding: .75rem 1rem; }
  h2 { font-size: 1rem; margin: 0 0 .5rem; }
  iframe { display: block; width: 100%; border: 1px solid #dde2ea; border-radius: 4px; background: #fff; }
  #frame-sales { height: 620px; }
  #frame-live { height: 300px; }
  .status { font-size: .85rem; color: #555; margin: .35rem 0 0; }
  .apps, .side { display: grid; gap: 1rem; align-content: start; }
  .bridge { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; margin: 0 0 .6rem; font-size: .9rem; }
  .bridge label { font-weight: 600; }
  .bridge .hint { margin: 0; }
  .bridge select { font: inherit; padding: .2rem .4rem; border: 1px solid #b8c0cc; border-radius: 4px; background: #fff; }
  .hint { font-size: .85rem; color: #555; margin: 0 0 .5rem; }
  #selections { list-style: none; margin: 0; padding: 0; }
  #selections li { padding: .3rem .5rem; border-left: 3px solid #3b6ea5; background: #f1f5fb; margin: 0 0 .35rem; font-variant-numeric: tabular-nums; }
  #selections li:first-child { font-weight: 600; }
  #selections li.error { border-left-color: #b91c1c; background: #fdf1f1; color: #b91c1c; font-weight: 400; }
  #selections li.empty { border-left-color: #dde2ea; background: none; color: #555; font-weight: 400; }
  #signed-out-view { padding: 3rem 1.25rem; text-align: center; }
  #signed-out-view button { font: inherit; font-size: 1.05rem; padding: .6rem 1.4rem; border: 0; border-radius: 4px; background: #3b82f6; color: #fff; cursor: pointer; }
  code { background: #f1f3f7; padding: 0 .25rem; border-radius: 3px; font-size: .85rem; }
  .probe { margin: 0 0 .75rem; }
  .probe strong { color: #b91c1c; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>Acme portal</h1>
  <span id="who" hidden></span>
  <button id="sign-out" type="button" hidden>Sign out</button>
</header>
<div id="signed-out-view" hidden>
  <p>This portal embeds data apps served through embedgate. Sign in to use them.</p>
  <button id="sign-in" type="button">Sign in</button>
</div>
<main id="signed-in-view" hidden>
  <div class="apps">
    <section>
      <h2>Sales dashboard <small>(a Dash-protocol app)</small></h2>
      <div class="bridge">
        <label for="region-picker">Dashboard region</label>
        <select id="region-picker" aria-describedby="region-hint" disabled>${REGION_OPTIONS}</select>
        <span class="hint" id="region-hint">outside the frame: sets the dashboard's filter, and follows it</span>
      </div>
      <iframe id="frame-sales" title="Sales dashboard"></iframe>
      <p class="status" id="status-sales" role="status">loading…</p>
    </section>
    <section>
      <h2>Live feed <small>(a WebSocket app)</small></h2>
      <iframe id="frame-live" title="Live feed"></iframe>
      <p class="status" id="status-live" role="status">loading…</p>
    </section>
  </div>
  <div class="side">
    <section aria-labelledby="selections-heading">
      <h2 id="selections-heading">Dashboard selections</h2>
      <p class="hint">Click a bar in the chart: the dashboard tells the portal which month. Newest first.</p>
      <ol id="selections" aria-labelledby="selections-heading" aria-live="polite">
        <li class="empty">Nothing selected yet.</li>
      </ol>
    </section>
    <aside>
      <h2>What an attacker gets</h2>
      <p>The same app endpoints, called without a token (as with curl), from the portal's server:</p>
      <div id="probes">checking…</div>
    </aside>
  </div>
</main>
<script src="/client.js"></script>
</body>
</html>
`;
