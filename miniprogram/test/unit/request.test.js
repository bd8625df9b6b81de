const { mockBackend, envelope } = require('../helpers/mock-backend');
const request = require('../../miniprogram/utils/request');
const api = require('../../miniprogram/utils/api');
const config = require('../../miniprogram/utils/config');
const { MESSAGES } = require('../../miniprogram/utils/errors');

const unauthorized = { status: 401, data: envelope('unauthorized', '请先登录') };

// Answers 401 to the stale token and 200 to the fresh one, like the backend after a session ends.
function authed(okData) {
  return (call) => (call.header.Authorization === 'Bearer fresh' ? { status: 200, data: okData } : unauthorized);
}

function loginReturns(token, over = {}) {
  return { status: 200, data: Object.assign({ token, expires_at: '2026-12-31T00:00:00Z', customer_linked: false, member: null }, over) };
}

describe('base URL per environment', () => {
  test('develop talks to the local sandbox backend, and a developer can point it elsewhere', () => {
    expect(config.baseUrl()).toBe('http://127.0.0.1:8080');
    wx.setStorageSync(config.OVERRIDE_KEY, 'http://127.0.0.1:18080/');
    expect(config.baseUrl()).toBe('http://127.0.0.1:18080');
  });

  test('release always uses the real domain, whatever storage says', () => {
    wx.getAccountInfoSync = () => ({ miniProgram: { envVersion: 'release' } });
    wx.setStorageSync(config.OVERRIDE_KEY, 'http://evil.example');
    expect(config.baseUrl()).toBe(config.RELEASE_BASE_URL);
    expect(config.RELEASE_BASE_URL).toMatch(/^https:\/\//);
    expect(config.sandboxHelpersEnabled()).toBe(false);
  });
});

describe('sessions', () => {
  test('sends the stored token as a Bearer header to /api/v1', async () => {
    wx.setStorageSync(request.TOKEN_KEY, 'fresh');
    const backend = mockBackend({ 'GET /member/me': authed({ ok: 1 }) });
    await expect(api.me()).resolves.toEqual({ ok: 1 });
    expect(backend.calls[0].header.Authorization).toBe('Bearer fresh');
    expect(wx.request.mock.calls[0][0].url).toBe('http://127.0.0.1:8080/api/v1/member/me');
    expect(wx.login).not.toHaveBeenCalled();
  });

  test('without a token it logs in first, once, and keeps the token', async () => {
    const backend = mockBackend({ 'POST /member/auth/login': loginReturns('fresh'), 'GET /member/me': authed({ ok: 1 }) });
    await api.me();
    expect(wx.login).toHaveBeenCalledTimes(1);
    expect(backend.callsTo('POST', '/member/auth/login')[0].data).toEqual({ code: 'wx-code' });
    expect(wx.getStorageSync(request.TOKEN_KEY)).toBe('fresh');
  });

  test('concurrent 401s share one wx.login and one auth/login, then each request is retried once', async () => {
    wx.setStorageSync(request.TOKEN_KEY, 'stale');
    const backend = mockBackend({
      'POST /member/auth/login': Object.assign(loginReturns('fresh'), { delay: 20 }),
      'GET /member/me': authed({ me: 1 }),
      'GET /member/events': authed({ items: [] }),
      'GET /member/rewards': authed({ rewards: [] }),
    });
    const results = await Promise.all([api.me(), api.events(), api.rewards()]);
    expect(results).toEqual([{ me: 1 }, { items: [] }, { rewards: [] }]);
    expect(wx.login).toHaveBeenCalledTimes(1);
    expect(backend.callsTo('POST', '/member/auth/login')).toHaveLength(1);
    for (const path of ['/member/me', '/member/events', '/member/rewards']) {
      const calls = backend.callsTo('GET', path);
      expect(calls.map((c) => c.header.Authorization)).toEqual(['Bearer stale', 'Bearer fresh']);
    }
  });

  test('a 401 that arrives after another request already logged in reuses the new token', async () => {
    wx.setStorageSync(request.TOKEN_KEY, 'stale');
    const backend = mockBackend({
      'POST /member/auth/login': loginReturns('fresh'),
      'GET /member/me': authed({ me: 1 }),
      // This one's 401 lands well after the login has finished.
      'GET /member/events': (call) => (call.header.Authorization === 'Bearer fresh'
        ? { status: 200, data: { items: [] } } : Object.assign({ delay: 40 }, unauthorized)),
    });
    await Promise.all([api.me(), api.events()]);
    expect(wx.login).toHaveBeenCalledTimes(1);
    expect(backend.callsTo('GET', '/member/events')).toHaveLength(2);
  });

  test('retries exactly once: a second 401 is given to the caller', async () => {
    wx.setStorageSync(request.TOKEN_KEY, 'stale');
    const backend = mockBackend({ 'POST /member/auth/login': loginReturns('fresh'), 'GET /member/me': unauthorized });
    await expect(api.me()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    expect(backend.callsTo('GET', '/member/me')).toHaveLength(2);
    expect(wx.login).toHaveBeenCalledTimes(1);
  });

  test('a failed login fails every waiting request with a message, and the next call tries again', async () => {
    wx.setStorageSync(request.TOKEN_KEY, 'stale');
    const backend = mockBackend({
      'POST /member/auth/login': { status: 401, data: envelope('wechat_code_invalid', '登录凭证已失效，请重新登录') },
      'GET /member/me': authed({ me: 1 }),
      'GET /member/events': authed({ items: [] }),
    });
    const settled = await Promise.allSettled([api.me(), api.events()]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(settled[0].reason.message).toBe(MESSAGES.wechat_code_invalid);
    expect(wx.login).toHaveBeenCalledTimes(1);
    backend.set('POST /member/auth/login', loginReturns('fresh'));
    await expect(api.me()).resolves.toEqual({ me: 1 });
    expect(wx.login).toHaveBeenCalledTimes(2);
  });

  test('login tells listeners whether the member is linked and joined', async () => {
    const seen = [];
    const off = request.onLogin((r) => seen.push(r.customer_linked));
    mockBackend({ 'POST /member/auth/login': loginReturns('fresh', { customer_linked: true }), 'GET /member/me': authed({}) });
    await api.me();
    off();
    expect(seen).toEqual([true]);
  });

  test('in develop with the sandbox helpers on, DevTools login codes are registered with the sandbox first', async () => {
    wx.setStorageSync(config.SANDBOX_KEY, '');
    const backend = mockBackend({
      'POST /member/auth/login': loginReturns('fresh'),
      'GET /member/me': authed({}),
    });
    // The control plane is not under /api/v1; the mock sees its full URL.
    await api.me();
    const urls = wx.request.mock.calls.map((c) => c[0].url);
    expect(urls[0]).toBe('http://127.0.0.1:8080/__sandbox/wechat/control/login-code');
    expect(wx.request.mock.calls[0][0].data).toEqual({ code: 'wx-code', openid: expect.stringMatching(/^o-devtools-/) });
    expect(backend.callsTo('POST', '/member/auth/login')).toHaveLength(1);
  });

  test('trial and release never call the sandbox control plane', async () => {
    wx.setStorageSync(config.SANDBOX_KEY, '');
    wx.getAccountInfoSync = () => ({ miniProgram: { envVersion: 'trial' } });
    mockBackend({});
    wx.request = jest.fn((o) => setTimeout(() => o.success({ statusCode: 200, data: { token: 't' } }), 0));
    await request.login();
    expect(wx.request.mock.calls.map((c) => c[0].url)).toEqual([`${config.TRIAL_BASE_URL}/api/v1/member/auth/login`]);
  });

  test('a protected image download logs in again on 401 and retries', async () => {
    wx.setStorageSync(request.TOKEN_KEY, 'stale');
    mockBackend({ 'POST /member/auth/login': loginReturns('fresh') });
    wx.downloadFile = jest.fn((o) => setTimeout(() => {
      if (o.header.Authorization === 'Bearer fresh') o.success({ statusCode: 200, tempFilePath: 'wxfile://qr.png' });
      else o.success({ statusCode: 401, tempFilePath: 'wxfile://err' });
    }, 0));
    await expect(api.referralQrcode()).resolves.toBe('wxfile://qr.png');
    expect(wx.downloadFile).toHaveBeenCalledTimes(2);
    expect(wx.login).toHaveBeenCalledTimes(1);
  });
});

describe('Idempotency-Key', () => {
  test('bookings and redemptions carry one, and the retry after a 401 keeps it', async () => {
    wx.setStorageSync(request.TOKEN_KEY, 'stale');
    const backend = mockBackend({
      'POST /member/auth/login': loginReturns('fresh'),
      'POST /member/bookings': (call) => (call.header.Authorization === 'Bearer fresh' ? { status: 201, data: { booking: {} } } : unauthorized),
      'POST /member/redemptions': (call) => (call.header.Authorization === 'Bearer fresh' ? { status: 201, data: {} } : unauthorized),
    });
    await api.book(11);
    wx.setStorageSync(request.TOKEN_KEY, 'stale');
    await api.redeem(3);
    const booking = backend.callsTo('POST', '/member/bookings');
    expect(booking).toHaveLength(2);
    expect(booking[0].header['Idempotency-Key']).toMatch(/^mp-[0-9a-z]+-[0-9a-z]+$/);
    expect(booking[1].header['Idempotency-Key']).toBe(booking[0].header['Idempotency-Key']);
    const redemption = backend.callsTo('POST', '/member/redemptions');
    expect(redemption[1].header['Idempotency-Key']).toBe(redemption[0].header['Idempotency-Key']);
    expect(redemption[0].header['Idempotency-Key']).not.toBe(booking[0].header['Idempotency-Key']);
  });

  test('a caller-provided key is used as given; plain requests carry none', async () => {
    wx.setStorageSync(request.TOKEN_KEY, 'fresh');
    const backend = mockBackend({
      'POST /member/bookings': { status: 201, data: { booking: {} } },
      'POST /member/checkins': { status: 201, data: {} },
    });
    await api.book(11, 'mp-fixed-key');
    await api.checkin();
    expect(backend.callsTo('POST', '/member/bookings')[0].header['Idempotency-Key']).toBe('mp-fixed-key');
    expect(backend.callsTo('POST', '/member/checkins')[0].header['Idempotency-Key']).toBeUndefined();
  });

  test('keys are random', () => {
    const keys = new Set(Array.from({ length: 200 }, () => request.newIdempotencyKey()));
    expect(keys.size).toBe(200);
  });
});

describe('error messages', () => {
  beforeEach(() => wx.setStorageSync(request.TOKEN_KEY, 'fresh'));

  const cases = [
    ['slot_full', 409, '该时段已约满，可加入候补', MESSAGES.slot_full],
    ['not_open_yet', 409, '尚未开放预约，请在开放时间后再来', MESSAGES.not_open_yet],
    ['already_booked', 409, '您已预约本场会员日，每场限约一次', MESSAGES.already_booked],
    ['cancel_deadline_passed', 409, '已过取消截止时间，如需调整请联系门店', MESSAGES.cancel_deadline_passed],
    ['insufficient_points', 409, '积分不足', MESSAGES.insufficient_points],
    ['sold_out', 409, '该礼品已兑完', MESSAGES.sold_out],
    ['limit_reached', 409, '您已达到该礼品的兑换上限', MESSAGES.limit_reached],
    // The server's words carry the specifics here.
    ['tier_too_low', 409, '本场会员日仅限黄金会员及以上会员预约', '本场会员日仅限黄金会员及以上会员预约'],
    ['booking_closed', 409, '本场会员日预约已截止', '本场会员日预约已截止'],
    // A code this table has not learned yet keeps the server's message.
    ['brand_new_code', 409, '一条新的说明', '一条新的说明'],
  ];

  test.each(cases)('%s -> friendly Chinese text', async (code, status, serverMessage, expected) => {
    mockBackend({ 'POST /member/bookings': { status, data: envelope(code, serverMessage, { opens_at: '2026-12-01T02:00:00Z' }) } });
    const err = await api.book(1).catch((e) => e);
    expect(err).toMatchObject({ name: 'ApiError', code, status, message: expected, serverMessage });
    expect(err.details.opens_at).toBe('2026-12-01T02:00:00Z');
  });

  test('a 5xx without a body and a network failure still read well', async () => {
    mockBackend({ 'GET /member/me': { status: 502, data: '<html>bad gateway</html>' }, 'GET /member/events': { fail: 'request:fail timeout' }, 'GET /member/rewards': { fail: 'request:fail' } });
    await expect(api.me()).rejects.toMatchObject({ code: 'internal_error', message: MESSAGES.internal_error });
    await expect(api.events()).rejects.toMatchObject({ code: 'timeout', status: 0, message: MESSAGES.timeout });
    await expect(api.rewards()).rejects.toMatchObject({ code: 'network', message: MESSAGES.network });
  });

  test('every message is Chinese', () => {
    Object.values(MESSAGES).forEach((m) => expect(m).toMatch(/[\u4e00-\u9fff]/));
  });
});
