// The one way pages talk to the backend. It adds the member's bearer token, logs in again when
// the backend says the session is gone (401), and gives every failure a Chinese message a
// member can act on.
//
// Sessions: the token lives in storage. A 401 starts one `wx.login` -> `POST auth/login` that
// every request failing at the same moment waits on (several pages load in parallel, and a
// burst of logins would each burn a one-time code and leave all but one token unused); each
// request is then retried exactly once.
//
// Writes that must not happen twice (bookings, redemptions) carry an `Idempotency-Key`: the
// same key on the retry lets the backend replay its first answer instead of booking again
// when the first attempt did reach it.
const config = require('./config');
const errors = require('./errors');

const TOKEN_KEY = 'memberhub.token';
const API_PREFIX = '/api/v1';
const TIMEOUT_MS = 15000;

let loginPromise = null;
const loginListeners = [];

function getToken() {
  return wx.getStorageSync(TOKEN_KEY) || '';
}

function setToken(token) {
  wx.setStorageSync(TOKEN_KEY, token);
}

function clearToken() {
  wx.removeStorageSync(TOKEN_KEY);
}

// Called with the login response ({token, expires_at, customer_linked, member}).
function onLogin(fn) {
  loginListeners.push(fn);
  return () => {
    const i = loginListeners.indexOf(fn);
    if (i >= 0) loginListeners.splice(i, 1);
  };
}

function newIdempotencyKey() {
  const rand = () => Math.random().toString(36).slice(2, 10);
  return `mp-${Date.now().toString(36)}-${rand()}${rand()}`;
}

function buildQuery(query) {
  if (!query) return '';
  const parts = Object.keys(query)
    .filter((k) => query[k] !== undefined && query[k] !== null && query[k] !== '')
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(query[k])}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

function send({ url, method, data, header }) {
  return new Promise((resolve, reject) => {
    wx.request({
      url,
      method,
      data,
      header: Object.assign({ 'content-type': 'application/json' }, header),
      timeout: TIMEOUT_MS,
      success: (res) => resolve(res),
      fail: (err) => reject(errors.network(err && err.errMsg)),
    });
  });
}

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res && res.code ? resolve(res.code) : reject(errors.network('login:no code'))),
      fail: (err) => reject(errors.network(err && err.errMsg)),
    });
  });
}

// Develop only: DevTools' codes are unknown to the sandbox, so tell it who this code is.
function sandboxOpenid() {
  let openid = wx.getStorageSync('memberhub.sandboxOpenid');
  if (!openid) {
    openid = `o-devtools-${Math.random().toString(36).slice(2, 12)}`;
    wx.setStorageSync('memberhub.sandboxOpenid', openid);
  }
  return openid;
}

async function registerSandboxLoginCode(code) {
  try {
    await send({
      url: `${config.baseUrl()}/__sandbox/wechat/control/login-code`,
      method: 'POST',
      data: { code, openid: sandboxOpenid() },
    });
  } catch (e) {
    // No sandbox there (a real backend): the login itself will tell.
  }
}

async function doLogin() {
  const code = await wxLogin();
  if (config.sandboxHelpersEnabled()) await registerSandboxLoginCode(code);
  const res = await send({
    url: `${config.baseUrl()}${API_PREFIX}/member/auth/login`,
    method: 'POST',
    data: { code },
  });
  if (res.statusCode !== 200 || !res.data || !res.data.token) throw errors.fromResponse(res);
  setToken(res.data.token);
  loginListeners.slice().forEach((fn) => {
    try {
      fn(res.data);
    } catch (e) {
      // A listener's bug must not turn a good login into a failed one.
    }
  });
  return res.data;
}

// One login at a time, shared by everyone who needs it.
function login() {
  if (!loginPromise) {
    loginPromise = doLogin().then(
      (r) => {
        loginPromise = null;
        return r;
      },
      (e) => {
        loginPromise = null;
        throw e;
      },
    );
  }
  return loginPromise;
}

// Gets a fresh session after `staleToken` was refused: joins a login already running, reuses a
// token another request already obtained, or starts the one login.
async function renewAfter(staleToken) {
  if (loginPromise) {
    await loginPromise;
    return;
  }
  const current = getToken();
  if (current && current !== staleToken) return;
  await login();
}

async function withSession(perform, auth) {
  if (auth && !getToken()) {
    if (loginPromise) await loginPromise;
    else await login();
  }
  let token = auth ? getToken() : '';
  let res = await perform(token);
  if (res.statusCode === 401 && auth) {
    await renewAfter(token);
    token = getToken();
    res = await perform(token);
  }
  return res;
}

function authHeader(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * request({ path, method, data, query, auth = true, idempotent = false, idempotencyKey })
 * resolves with the response body of a 2xx, rejects with an errors.ApiError.
 */
async function request(opts) {
  const method = (opts.method || 'GET').toUpperCase();
  const auth = opts.auth !== false;
  const key = opts.idempotent ? opts.idempotencyKey || newIdempotencyKey() : '';
  const url = `${config.baseUrl()}${API_PREFIX}${opts.path}${buildQuery(opts.query)}`;
  const res = await withSession((token) => {
    const header = authHeader(token);
    if (key) header['Idempotency-Key'] = key;
    return send({ url, method, data: opts.data, header });
  }, auth);
  if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
  throw errors.fromResponse(res);
}

// Downloads a protected image (e.g. the referral QR) to a temp file: <image> cannot send the
// bearer token itself.
async function download(path) {
  const url = `${config.baseUrl()}${API_PREFIX}${path}`;
  const res = await withSession((token) => new Promise((resolve, reject) => {
    wx.downloadFile({
      url,
      header: authHeader(token),
      timeout: TIMEOUT_MS,
      success: (r) => resolve(r),
      fail: (err) => reject(errors.network(err && err.errMsg)),
    });
  }), true);
  if (res.statusCode >= 200 && res.statusCode < 300 && res.tempFilePath) return res.tempFilePath;
  throw errors.fromResponse(res);
}

// A public GET outside /api/v1 on the same backend (the artwork manifest): no token, so a
// member who never logs in still gets it, and it never starts a login of its own.
async function getPublic(path) {
  const res = await send({ url: `${config.baseUrl()}${path}`, method: 'GET' });
  if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
  throw errors.fromResponse(res);
}

// Develop only: asks the WeChat sandbox's control plane to stand in for WeChat (e.g. to
// register a test phone code that DevTools' getPhoneNumber cannot produce).
async function sandboxControl(path, body) {
  const res = await send({
    url: `${config.baseUrl()}/__sandbox/wechat/control/${path}`,
    method: 'POST',
    data: body,
  });
  if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
  throw errors.fromResponse(res);
}

module.exports = {
  request,
  getPublic,
  sandboxControl,
  download,
  login,
  onLogin,
  getToken,
  setToken,
  clearToken,
  newIdempotencyKey,
  TOKEN_KEY,
  API_PREFIX,
};
