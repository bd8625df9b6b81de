// A stand-in for the backend behind wx.request: routes keyed "METHOD /member/..." answer with
// {status, data} (or a function of the request), every call is recorded, and anything
// unrouted is a 404 envelope, as the real backend answers. API calls are keyed by their path
// under /api/v1 ("GET /member/me"), anything else on the backend by its whole path
// ("GET /static/mp/manifest.json").
const ORIGIN = 'http://127.0.0.1:8080';
const PREFIX = `${ORIGIN}/api/v1`;

function envelope(code, message, extra) {
  return { error: Object.assign({ code, message }, extra || {}) };
}

function mockBackend(routes = {}) {
  const calls = [];
  const table = Object.assign({}, routes);
  wx.request = jest.fn((opts) => {
    const rel = opts.url.startsWith(PREFIX) ? opts.url.slice(PREFIX.length) : opts.url.replace(ORIGIN, '');
    const [pathPart, queryPart] = rel.split('?');
    const method = (opts.method || 'GET').toUpperCase();
    const query = {};
    (queryPart || '').split('&').filter(Boolean).forEach((kv) => {
      const [k, v] = kv.split('=');
      query[decodeURIComponent(k)] = decodeURIComponent(v || '');
    });
    const call = { method, path: pathPart, query, data: opts.data, header: opts.header || {} };
    calls.push(call);
    let route = table[`${method} ${pathPart}`];
    if (route === undefined && method === 'POST' && pathPart === '/member/auth/login') {
      route = { status: 200, data: { token: 'tok-1', expires_at: '2026-12-31T00:00:00Z', customer_linked: true, member: null } };
    }
    let answer = typeof route === 'function' ? route(call) : route;
    if (answer === undefined) answer = { status: 404, data: envelope('not_found', '请求的资源不存在') };
    const deliver = () => {
      if (answer.fail) opts.fail && opts.fail({ errMsg: answer.fail });
      else opts.success && opts.success({ statusCode: answer.status || 200, data: answer.data, header: {} });
    };
    setTimeout(deliver, answer.delay || 0);
    return { abort() {} };
  });
  return {
    calls,
    set(key, value) {
      table[key] = value;
    },
    callsTo(method, path) {
      return calls.filter((c) => c.method === method && c.path === path);
    },
  };
}

module.exports = { mockBackend, envelope, PREFIX, ORIGIN };
