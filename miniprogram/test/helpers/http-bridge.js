// wx.request and wx.downloadFile carried over real HTTP (node's http module), so the pages'
// own code talks to a real backend in the journey test, headers, status codes and all.
const http = require('http');
const fs = require('fs');
const os = require('os');
const path = require('path');

// One connection per request. Node's default agent keeps connections alive and reuses an idle
// one; the backend (actix) closes a connection after 5 s idle, so a request sent on one that
// had idled just under 5 s now and then meets the close and fails with "ECONNRESET socket hang
// up" before the backend sees it (a flaky journey step, never a real failure of the page).
const agent = new http.Agent({ keepAlive: false });

const log = [];
const downloads = [];

function encodeData(method, data) {
  if (data === undefined || data === null) return null;
  if (method === 'GET') return null;
  return Buffer.from(typeof data === 'string' ? data : JSON.stringify(data));
}

function perform(opts, onDone) {
  const method = (opts.method || 'GET').toUpperCase();
  const u = new URL(opts.url);
  if (method === 'GET' && opts.data && typeof opts.data === 'object') {
    Object.keys(opts.data).forEach((k) => u.searchParams.set(k, opts.data[k]));
  }
  const body = encodeData(method, opts.data);
  const headers = Object.assign({}, opts.header || {});
  if (body) headers['content-length'] = body.length;
  const started = Date.now();
  const req = http.request({
    method, hostname: u.hostname, port: u.port, path: u.pathname + u.search, headers, timeout: opts.timeout || 15000, agent,
  }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const buf = Buffer.concat(chunks);
      log.push({ method, path: u.pathname + u.search, status: res.statusCode, headers, ms: Date.now() - started });
      onDone(null, { statusCode: res.statusCode, header: res.headers, buf });
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => {
    log.push({ method, path: u.pathname + u.search, status: 0, error: `${e.code || ''} ${e.message}`.trim(), headers, ms: Date.now() - started });
    onDone(e);
  });
  if (body) req.write(body);
  req.end();
}

function install() {
  wx.request = (opts) => {
    perform(opts, (err, res) => {
      if (err) {
        if (opts.fail) opts.fail({ errMsg: `request:fail ${err.message}` });
        return;
      }
      const text = res.buf.toString('utf8');
      let data = text;
      // Like WeChat with dataType "json" (the default): parse when it parses.
      try {
        data = text ? JSON.parse(text) : '';
      } catch (e) {
        data = text;
      }
      if (opts.success) opts.success({ statusCode: res.statusCode, data, header: res.header });
    });
    return { abort() {} };
  };
  wx.downloadFile = (opts) => {
    perform(Object.assign({ method: 'GET' }, opts), (err, res) => {
      if (err) {
        if (opts.fail) opts.fail({ errMsg: `downloadFile:fail ${err.message}` });
        return;
      }
      const file = path.join(os.tmpdir(), `mp-download-${Date.now()}-${Math.random().toString(36).slice(2)}`);
      fs.writeFileSync(file, res.buf);
      downloads.push(file);
      if (opts.success) opts.success({ statusCode: res.statusCode, tempFilePath: file });
    });
    return { abort() {} };
  };
}

function cleanup() {
  downloads.splice(0).forEach((f) => fs.rmSync(f, { force: true }));
}

module.exports = { install, cleanup, log };
