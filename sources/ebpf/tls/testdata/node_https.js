// node_https is the Node.js program of TestNodeHTTPS: Node's own https
// module over the OpenSSL it links statically, which it drives through
// memory BIOs (its SSL calls make no socket syscall).
//
//	node node_https.js server KEY CERT   serve on 127.0.0.1, print "port N"
//	node node_https.js client PORT N     wait for a line on stdin, then make
//	                                     N keep-alive requests and print each status
'use strict';
const fs = require('fs');
const https = require('https');

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
