// Builds the UI into ../dist (npm run build; `make ui` runs npm ci first):
// the page, its stylesheet, and the bundle split so that Vega loads only
// when a chart is drawn.
const esbuild = require('esbuild');
const fs = require('fs');
const path = require('path');

const dist = path.join(__dirname, '..', 'dist');
fs.rmSync(path.join(dist, 'assets'), { recursive: true, force: true });
fs.mkdirSync(path.join(dist, 'assets'), { recursive: true });
esbuild.buildSync({
  entryPoints: [path.join(__dirname, 'src', 'main.js')],
  bundle: true,
  minify: true,
  splitting: true,
  format: 'esm',
  target: 'es2020',
  outdir: path.join(dist, 'assets'),
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  legalComments: 'linked',
  logLevel: 'warning',
});
fs.copyFileSync(path.join(__dirname, 'static', 'index.html'), path.join(dist, 'index.html'));
fs.copyFileSync(path.join(__dirname, 'static', 'style.css'), path.join(dist, 'assets', 'style.css'));
let total = 0;
for (const f of fs.readdirSync(path.join(dist, 'assets'))) total += fs.statSync(path.join(dist, 'assets', f)).size;
console.log(`ui/dist: ${(total / 1024).toFixed(0)} KiB`);
