// The live app's only page: self-contained HTML (inline style, script and SVG, no external assets) that opens the
// app's WebSocket on the same host and draws the pushed values as a line chart.

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** The browser side: connects, reports the socket's state, counts points and redraws the line on each one. */
const CLIENT_SCRIPT = `
const socketUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + document.body.dataset.socketPath;
const state = document.getElementById('state');
const count = document.getElementById('count');
const socketUser = document.getElementById('socket-user');
const line = document.getElementById('line');
const values = [];
let received = 0;
const socket = new WebSocket(socketUrl);
state.textContent = 'connecting';
socket.addEventListener('open', () => { state.textContent = 'open'; });
socket.addEventListener('close', (event) => { state.textContent = 'closed (code ' + event.code + ')'; });
socket.addEventListener('message', (event) => {
  const message = JSON.parse(event.data);
  if (message.type === 'hello') {
    socketUser.textContent = message.user === null ? 'anonymous' : message.user;
    return;
  }
  values.push(message.value);
  if (values.length > 60) values.shift();
  count.textContent = String(++received);
  line.setAttribute('points', values.map((value, i) => (i * 10) + ',' + (100 - value).toFixed(1)).join(' '));
});
`;

export function renderStreamPage(socketPath: string, user: string | undefined): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Live metrics</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; max-width: 720px; margin: 0 auto; padding: 16px; }
svg { width: 100%; height: 240px; border: 1px solid #ccd; background: #fafbff; }
polyline { fill: none; stroke: #3b6ea5; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
dt { font-weight: 600; } dd { margin: 0 0 8px; }
</style>
</head>
<body data-socket-path="${escapeHtml(socketPath)}">
<h1>Live metrics</h1>
<dl>
<dt>Serving</dt><dd id="user">${escapeHtml(user ?? 'anonymous')}</dd>
<dt>Socket user</dt><dd id="socket-user">unknown</dd>
<dt>Socket</dt><dd id="state">not started</dd>
<dt>Points received</dt><dd id="count">0</dd>
</dl>
<svg id="chart" viewBox="0 0 590 100" preserveAspectRatio="none" role="img" aria-label="Streaming values">
<polyline id="line" points=""></polyline>
</svg>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}
