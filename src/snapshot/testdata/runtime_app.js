// A node "runtime" for the snapshot tests: keep-alive http client to the test Runtime API,
// blocked on GET .../restore/next (libuv epoll) when it is checkpointed.
const http = require('http');
const crypto = require('crypto');
const port = Number(process.argv[2]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const data = [];
for (let i = 0; i < 20000; i++) data.push({ i, s: 'x'.repeat(200) });
const digest = crypto.createHash('sha256').update(JSON.stringify(data.slice(0, 100))).digest('hex');
setInterval(() => {}, 1000);  // a live libuv timer across the snapshot

function next() {
  const req = http.request({ host: '127.0.0.1', port, path: '/2018-06-01/runtime/restore/next', agent,
                             headers: { 'Content-Length': 0 } }, (res) => {
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => {
      const out = JSON.stringify({ echo: JSON.parse(body), total: data.length, digest, pid: process.pid });
      const post = http.request({ host: '127.0.0.1', port, path: '/2018-06-01/runtime/invocation/x/response',
                                  method: 'POST', agent, headers: { 'Content-Length': Buffer.byteLength(out) } },
                                (r2) => { r2.resume(); r2.on('end', next); });
      post.end(out);
    });
  });
  req.end();
}
next();
