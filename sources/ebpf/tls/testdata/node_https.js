// node_https is the Node.js program of TestNodeHTTPS: Node's own https
// module over the OpenSSL it links statically, which it drives through
// memory BIOs (its SSL calls make no socket syscall).
//
//	node node_https.js server KEY CERT     serve on 127.0.0.1, print "port N"
//	node node_https.js client PORT N       wait for a line on stdin, then make
//	                                       N keep-alive requests and print each status
//	node node_https.js h2server KEY CERT   the same over HTTP/2 (http2 module)
//	node node_https.js h2client PORT N     N requests on one HTTP/2 session
'use strict';
const fs = require('fs');
const https = require('https');
const http2 = require('http2');

const [mode, a, b] = process.argv.slice(2);
if (mode === 'server') {
  const srv = https.createServer({ key: fs.readFileSync(a), cert: fs.readFileSync(b) }, (req, res) => {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ path: req.url, got: n }));
    });
  });
  srv.keepAliveTimeout = 60000;
  srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
} else if (mode === 'h2server') {
  const srv = http2.createSecureServer({ key: fs.readFileSync(a), cert: fs.readFileSync(b) }, (req, res) => {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ path: req.url, got: n }));
    });
  });
  srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
} else if (mode === 'h2client') {
  const port = Number(a), n = Number(b);
  process.stdin.once('data', async () => {
    const session = http2.connect('https://127.0.0.1:' + port, { rejectUnauthorized: false });
    for (let i = 0; i < n; i++) {
      await new Promise((resolve, reject) => {
        const body = i % 2 ? 'x'.repeat(100 * i) : '';
        const req = session.request({ ':method': body ? 'POST' : 'GET', ':path': '/node?i=' + i });
        let data = '', status = 0;
        req.on('response', (h) => { status = h[':status']; });
        req.on('data', (c) => { data += c; });
        req.on('end', () => { console.log(status + ' ' + data); resolve(); });
        req.on('error', reject);
        if (body) req.end(body); // a GET's stream ends with its headers
      });
    }
    session.close(() => process.exit(0));
  });
} else if (mode === 'client') {
  const port = Number(a), n = Number(b);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const one = (i) => new Promise((resolve, reject) => {
    const body = i % 2 ? 'x'.repeat(100 * i) : '';
    const req = https.request({
      host: '127.0.0.1', port, agent, rejectUnauthorized: false,
      method: body ? 'POST' : 'GET', path: '/node?i=' + i,
      headers: body ? { 'Content-Type': 'text/plain', 'Content-Length': body.length } : {},
    }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => { console.log(res.statusCode + ' ' + data); resolve(); });
    });
    req.on('error', reject);
    req.end(body);
  });
  process.stdin.once('data', async () => {
    for (let i = 0; i < n; i++) await one(i);
    agent.destroy();
    process.exit(0);
  });
}
