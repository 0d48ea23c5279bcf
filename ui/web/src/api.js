// The server's API: JSON endpoints and the framed Arrow stream of runs
// (see docs/ui.md, "The run stream").
import { RecordBatchReader } from 'apache-arrow';

const TOKEN_KEY = 'pxq.token';

export class AuthError extends Error {}

export class RunError extends Error {
  constructor(body) {
    super(body.message || 'run failed');
    this.body = body;
  }
}

function headers(extra) {
  const h = Object.assign({}, extra);
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

async function errorOf(resp) {
  let body = { message: `${resp.status} ${resp.statusText}` };
  try {
    const j = await resp.json();
    if (j && j.error) body = j.error;
  } catch { /* not JSON */ }
  if (resp.status === 401) throw new AuthError(body.message);
  return new RunError(body);
}

export async function getJSON(path) {
  const resp = await fetch(path.replace(/^\//, ''), { headers: headers() });
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

// run posts a run request and calls the handlers as frames arrive:
// onTable(name, schema), onBatch(name, batch), onDone(name, {rows,
// truncated}), onWarning(message). It resolves with {elapsedMs} at the
// end frame and rejects with a RunError (its body has kind, line, col).
export async function run(req, h, signal) {
  const resp = await fetch('api/run', {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(req),
    signal,
  });
  if (!resp.ok) throw await errorOf(resp);
  let ended = null;
  for await (const reader of RecordBatchReader.readAll(resp.body)) {
    const md = reader.schema.metadata;
    const frame = md.get('pxq.frame');
    switch (frame) {
      case 'table': {
        const name = md.get('pxq.table');
        h.onTable(name, reader.schema);
        for await (const batch of reader) h.onBatch(name, batch);
        break;
      }
      case 'done':
        h.onDone(md.get('pxq.table'), { rows: Number(md.get('pxq.rows')), truncated: md.get('pxq.truncated') === 'true' });
        break;
      case 'warning':
        h.onWarning(md.get('pxq.message'));
        break;
      case 'error': {
        let body;
        try { body = JSON.parse(md.get('pxq.error')); } catch { body = { message: md.get('pxq.error') }; }
        throw new RunError(body);
      }
      case 'end':
        ended = { elapsedMs: Number(md.get('pxq.elapsed_ms')) };
        break;
    }
    // Drain whatever is left of a frame so the next one starts clean.
    if (frame !== 'table') for await (const _ of reader) { /* none */ }
  }
  if (!ended) throw new RunError({ message: 'the server closed the stream before the run ended' });
  return ended;
}
