// Starts the real memberhub binary for the journey test: `--demo` (sandbox WeChat, demo chain)
// on a free port in a temporary directory, and stops it afterwards.
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');

const DEFAULT_BIN = '/tmp/memberhub-journey';
const noKeepAlive = new http.Agent({ keepAlive: false });
const START_TIMEOUT_MS = 180000;

function binary() {
  return process.env.MEMBERHUB_BIN || DEFAULT_BIN;
}

function start() {
  const bin = binary();
  if (!fs.existsSync(bin)) {
    return Promise.reject(new Error(`memberhub binary not found at ${bin} (set MEMBERHUB_BIN)`));
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-journey-'));
  const logPath = path.join(dir, 'server.log');
  const log = fs.openSync(logPath, 'w');
  const env = Object.assign({}, process.env, { MEMBERHUB_SERVER__PORT: '0' });
  // Always the embedded SQLite and in-process cache, whatever the developer's shell points at.
  delete env.MEMBERHUB_DATABASE__URL;
  delete env.MEMBERHUB_REDIS__URL;
  const child = spawn(bin, ['--demo'], { cwd: dir, env, stdio: ['ignore', log, log] });
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      const text = fs.readFileSync(logPath, 'utf8');
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (m) {
        const admin = /^\s*demo-admin\s+.*\s(\S+)\s*$/m.exec(text);
        resolve({
          base: `http://127.0.0.1:${m[1]}`,
          adminPassword: admin ? admin[1] : null,
          dir,
          log: () => fs.readFileSync(logPath, 'utf8'),
          stop: () => stop(child, dir, log),
        });
        return;
      }
      if (child.exitCode !== null) {
        reject(new Error(`memberhub exited with ${child.exitCode}:\n${text.slice(-3000)}`));
        return;
      }
      if (Date.now() - started > START_TIMEOUT_MS) {
        child.kill('SIGKILL');
        reject(new Error(`memberhub did not start within ${START_TIMEOUT_MS / 1000}s:\n${text.slice(-3000)}`));
        return;
      }
      setTimeout(poll, 200);
    };
    poll();
  });
}

function stop(child, dir, log) {
  return new Promise((resolve) => {
    const done = () => {
      try {
        fs.closeSync(log);
      } catch (e) {
        // already closed
      }
      fs.rmSync(dir, { recursive: true, force: true });
      resolve();
    };
    if (child.exitCode !== null) {
      done();
      return;
    }
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
    child.once('exit', () => {
      clearTimeout(killer);
      done();
    });
    child.kill('SIGTERM');
  });
}

// A plain JSON call for the test harness itself (the sandbox control plane, the staff API).
function call(base, method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(urlPath, base);
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request({
      // A fresh connection each time (see http-bridge.js: the keep-alive race).
      agent: noKeepAlive,
      method,
      hostname: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      headers: Object.assign(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}, headers),
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch (e) {
          json = null;
        }
        if (res.statusCode >= 400) reject(new Error(`${method} ${urlPath} -> ${res.statusCode} ${text}`));
        else resolve(json);
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

module.exports = { start, call, binary };
