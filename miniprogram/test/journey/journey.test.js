// The member journey against the real backend: memberhub --demo in WeChat sandbox mode, the
// pages' own code, and wx.request carried over real HTTP. The harness plays WeChat's part only
// (login and phone codes through the sandbox control plane, the subscription popup's answer)
// and the desk's (points given to the new member), and drives everything else through the
// pages: log in, consent, bind the phone, join, see the card, check in, redeem, book a
// member-day slot and find it in my bookings, export my data, set my birthday and ask for my
// data to be deleted. GET /member/account is read before and after each joining step.
const backend = require('../helpers/backend');
const bridge = require('../helpers/http-bridge');
const { openPage, text, tap, fire, flush, $ } = require('../helpers/page');
const store = require('../../miniprogram/utils/store');
const api = require('../../miniprogram/utils/api');

const RUN = Date.now().toString(36);
const LOGIN_CODE = `journey-login-${RUN}`;
const PHONE_CODE = `journey-phone-${RUN}`;
const PHONE = `1365555${String(Date.now() % 10000).padStart(4, '0')}`;
const PHONE_MASKED = `${PHONE.slice(0, 3)}****${PHONE.slice(-4)}`;

global.__keepSession = true;

let server;
const pages = [];

async function settle(times = 20) {
  // Real HTTP takes real time; wait for the page's requests to come back.
  for (let i = 0; i < times; i += 1) {
    // eslint-disable-next-line no-await-in-loop
    await flush(2);
    // eslint-disable-next-line no-await-in-loop
    await new Promise((r) => setTimeout(r, 15));
  }
}

async function until(what, check, timeoutMs = 10000) {
  const started = Date.now();
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    await settle(2);
    if (check()) return;
    if (Date.now() - started > timeoutMs) {
      // The last requests say more than the timeout does (a failure, a missing call).
      const last = bridge.log.slice(-6).map((r) => `${r.method} ${r.path} -> ${r.status}${r.error ? ` ${r.error}` : ''} (${r.ms} ms)`);
      throw new Error(`timed out waiting for ${what}; last requests:\n  ${last.join('\n  ')}`);
    }
  }
}

// The answers the backend gave to one kind of request, in order.
function answers(method, path) {
  return bridge.log.filter((r) => r.method === method && r.path === path).map((r) => r.status);
}

// What this phone remembers about the account, forgotten as on a new phone (the session stays).
function forgetAccountOnThisPhone() {
  wx.removeStorageSync('memberhub.account');
  store.set('account', undefined);
}

let staffToken;

async function staff(method, path, body, headers = {}) {
  if (!staffToken) {
    const login = await backend.call(server.base, 'POST', '/api/v1/staff/auth/login', { username: 'demo-admin', password: server.adminPassword, session: 'bearer' });
    staffToken = login.token;
  }
  return backend.call(server.base, method, path, body, Object.assign({ authorization: `Bearer ${staffToken}` }, headers));
}

async function open(relPath, query) {
  const page = await openPage(relPath, query);
  pages.push(page);
  return page;
}

beforeAll(async () => {
  server = await backend.start();
  await backend.call(server.base, 'POST', '/__sandbox/wechat/control/login-code', { code: LOGIN_CODE, openid: `o-journey-${RUN}` });
  await backend.call(server.base, 'POST', '/__sandbox/wechat/control/phone-code', { code: PHONE_CODE, phone: PHONE });
}, 200000);

afterAll(async () => {
  pages.forEach((p) => {
    if (p.instance.onUnload) p.instance.onUnload();
  });
  bridge.cleanup();
  if (server) await server.stop();
});

beforeEach(() => {
  bridge.install();
  wx.setStorageSync('memberhub.apiBase', server.base);
  wx.setStorageSync('memberhub.sandbox', 'off');
  // WeChat's side: one login code, which the sandbox knows; the popup accepts what it is asked.
  wx.login = jest.fn((o) => setTimeout(() => o.success({ code: LOGIN_CODE }), 0));
  wx.requestSubscribeMessage = jest.fn((o) => setTimeout(() => {
    const res = { errMsg: 'requestSubscribeMessage:ok' };
    o.tmplIds.forEach((id) => { res[id] = 'accept'; });
    o.success(res);
  }, 0));
});

describe('member journey against the real backend', () => {
  let mine;
  let card;

  test('1. opening 我的 logs in with wx.login and shows the consent step', async () => {
    mine = await open('pages/mine/index');
    await until('我的 to load', () => mine.data.status !== 'loading');
    expect(wx.login).toHaveBeenCalledTimes(1);
    expect(wx.getStorageSync('memberhub.token')).toBeTruthy();
    expect(mine.data.step).toBe('consent');
    expect(answers('GET', '/api/v1/member/account')).toEqual([200]);
    expect(mine.data.choices).toBeNull();
    const account = await api.account();
    expect(account).toMatchObject({ consent: null, phone_masked: null, customer_linked: false, is_member: false, deletion_requested_at: null });
    expect(account.referral_code).toBeTruthy();
  });

  test('2. consent, then the phone from getPhoneNumber, then join', async () => {
    await fire(mine, '#consent-policy', 'change', { checked: true });
    await fire(mine, '#consent-sensitive', 'change', { checked: true });
    await tap(mine, '#consent-submit');
    await until('the phone step', () => mine.data.step === 'phone');
    const consented = await api.account();
    expect(consented.consent).toMatchObject({ policy_version: '2026-11', marketing: false, sensitive_health: true });
    expect(consented.consent.consented_at).toBeTruthy();
    expect(consented).toMatchObject({ phone_masked: null, customer_linked: false, is_member: false });

    // On a new phone, the consent on file is not asked for again.
    forgetAccountOnThisPhone();
    await mine.instance.load();
    expect(mine.data.step).toBe('phone');
    expect(mine.data.choices).toEqual({ marketing: false, sensitive: true });

    await fire(mine, '#bind-phone', 'getphonenumber', { errMsg: 'getPhoneNumber:ok', code: PHONE_CODE });
    await until('the join step', () => mine.data.step === 'join');
    expect(text(mine, '#join-step')).toContain(PHONE_MASKED);
    expect(await api.account()).toMatchObject({ phone_masked: PHONE_MASKED, customer_linked: true, is_member: false });

    await tap(mine, '#join');
    await until('membership', () => mine.data.step === 'member');
    expect(wx.switchTab).toHaveBeenCalledWith({ url: '/pages/index/index' });
    expect(store.get('card').member_no).toMatch(/^MH\d+$/);
    expect(wx.login).toHaveBeenCalledTimes(0); // still the session from step 1
    expect(await api.account()).toMatchObject({ phone_masked: PHONE_MASKED, customer_linked: true, is_member: true });

    forgetAccountOnThisPhone();
    await mine.instance.load();
    expect(mine.data.step).toBe('member');
    expect(text(mine, '#profile')).toContain(PHONE_MASKED);
    expect(text(mine, '#choice-marketing')).toContain('未接收');
  });

  test('3. the card shows the new member where they stand', async () => {
    card = await open('pages/index/index');
    await until('the card', () => card.data.status === 'ready');
    expect(text(card, '#tier-badge')).toBe('普通会员');
    expect(text(card, '#member-no')).toBe(`NO. ${store.get('card').member_no}`);
    expect(text(card, '#balance')).toBe('0');
    expect(text(card, '#progress-text')).toBe('近 12 个月再消费 ¥30,000 即可升级为黄金会员');
    expect(text(card, '#validity')).toBe('等级长期有效');
  });

  test('4. daily check-in', async () => {
    await tap(card, '#checkin');
    await until('the check-in', () => card.data.card.checkedIn && card.data.card.balance === '10');
    expect(text(card, '#checkin')).toBe('已签到');
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '签到成功 +10 积分' }));
  });

  test('5. redeem a reward; the card shows the new balance without a refresh', async () => {
    // The desk gives the new member 600 points (the staff API, as the console would).
    await staff('POST', `/api/v1/staff/members/${store.get('card').member_id}/points/adjust`,
      { delta: 600, reason: '开卡礼' }, { 'idempotency-key': `journey-${RUN}` });
    card.instance.onShow();
    await until('the card to show 610', () => text(card, '#balance') === '610');

    const rewards = await open('pages/rewards/index');
    await until('the catalogue', () => rewards.data.status === 'ready');
    expect(text(rewards, '#balance')).toBe('610');
    const voucher100 = rewards.data.rewards.find((r) => r.pricePoints === 500 && r.eligible);
    expect(voucher100).toBeTruthy();
    await tap(rewards, `#redeem-${voucher100.id}`);
    await until('the redemption', () => wx.showModal.mock.calls.some((c) => c[0].title === '兑换成功'));
    // The card page, still open underneath, already shows it.
    expect(text(card, '#balance')).toBe('110');

    const vouchers = await open('pages/vouchers/index');
    await until('my vouchers', () => vouchers.data.status === 'ready');
    const v = vouchers.data.vouchers[0];
    expect(v.title).toBe(voucher100.name);
    await tap(vouchers, `#show-${v.id}`);
    expect($(vouchers, `#qr-${v.id} >>> .qrcode-stub`).dom.getAttribute('data-value')).toBe(v.code);

    const history = await open('pages/points/history');
    await until('the history', () => history.data.status === 'ready');
    expect(history.data.entries.map((e) => e.cls)).toEqual(['spend', 'adjust', 'earn']);
    expect(history.data.entries[0].delta).toBe('-500');
  });

  test('6. book a member-day slot, asking for the reminder first, and find it in my bookings', async () => {
    const events = await open('pages/events/index');
    await until('the member days', () => events.data.status === 'ready');
    events.instance.stopTicking();
    const open_ = events.data.events.find((e) => e.state === 'open');
    expect(open_).toBeTruthy();
    expect(events.data.events.some((e) => e.state === 'countdown')).toBe(true);

    const detail = await open('pages/event/detail', { id: String(open_.id) });
    detail.instance.stopTicking();
    await until('the slots', () => detail.data.status === 'ready' && detail.data.slots.length > 0);
    const slot = detail.data.slots.find((s) => s.action === 'book');
    await until('the subscription templates', () => !!store.get('subscriptions'));
    await tap(detail, `#book-${slot.id}`);
    await until('the booking', () => wx.showModal.mock.calls.some((c) => c[0].title === '预约成功'));
    expect(wx.requestSubscribeMessage).toHaveBeenCalledTimes(1);
    const quotas = store.get('subscriptions').quotas;
    wx.requestSubscribeMessage.mock.calls[0][0].tmplIds.forEach((id) => expect(quotas[id]).toBeGreaterThanOrEqual(1));
    const bookingPost = bridge.log.find((r) => r.method === 'POST' && r.path === '/api/v1/member/bookings');
    expect(bookingPost.status).toBe(201);
    expect(bookingPost.headers['Idempotency-Key']).toMatch(/^mp-/);
    await until('the slot to show my booking', () => detail.data.slots.some((s) => s.mine));

    const bookings = await open('pages/bookings/index');
    await until('my bookings', () => bookings.data.status === 'ready');
    const mine_ = bookings.data.bookings[0];
    expect(mine_.status).toBe('booked');
    expect(mine_.service).toBe(slot.service);
    expect(text(bookings, `#booking-${mine_.id}`)).toContain('待到店');
    expect(text(bookings, `#booking-${mine_.id}`)).toContain(mine_.code);
  });

  test('7. the rules and the referral page come from the same backend', async () => {
    const rules = await open('pages/points/rules');
    await until('the rules', () => rules.data.status === 'ready');
    expect(text(rules, '#tiers')).toContain('黄金会员');

    const referral = await open('pages/referral/index');
    await until('the referral code and QR', () => referral.data.status === 'ready' && !!referral.data.qrcode);
    expect(referral.instance.onShareAppMessage().path).toBe(`/pages/index/index?ref=${referral.data.code}`);
  });

  test('8. two visits at the desk, then my data export holds them, with my phone in full', async () => {
    const memberId = store.get('card').member_id;
    const { customer_id: customerId } = await staff('GET', `/api/v1/staff/members/${memberId}`);
    const stores = await staff('GET', '/api/v1/staff/stores');
    for (const [i, paid] of [[1, 38000], [2, 12000]]) {
      // eslint-disable-next-line no-await-in-loop
      await staff('POST', '/api/v1/staff/consumptions', {
        customer_id: customerId, store_id: stores[0].id, order_no: `journey-${RUN}-${i}`, paid_fen: paid,
        items: [{ name: '水光补水', amount_fen: paid }],
      });
    }

    $(mine, '#export').dispatchEvent('click');
    await until('the export', () => !!mine.data.exported);
    expect(answers('POST', '/api/v1/member/data-export')).toEqual([200]);
    const count = (key) => mine.data.exported.kinds.find((k) => k.key === key).count;
    expect(count('customer')).toBe(1);
    expect(count('member')).toBe(1);
    expect(count('consumptions')).toBe(2);
    expect(count('vouchers')).toBe(1);
    expect(count('bookings')).toBe(1);
    expect(count('consents')).toBe(1);
    expect(text(mine, '#export-result')).toContain('消费记录');

    await tap(mine, '#export-copy');
    expect(wx.setClipboardData).toHaveBeenCalledTimes(1);
    const copy = JSON.parse(wx.setClipboardData.mock.calls[0][0].data);
    expect(copy).toMatchObject({ kind: 'export', status: 'completed' });
    expect(copy.data.customer[0].phone).toBe(PHONE);
    expect(copy.data.customer[0].id).toBe(customerId);
    expect(copy.data.consumptions.map((c) => c.paid_fen)).toEqual([38000, 12000]);
    expect(copy.data.member[0].member_no).toBe(store.get('card').member_no);
    // Internal columns stay out of the copy.
    expect(copy.data.customer[0]).not.toHaveProperty('phone_enc');
    expect(copy.data.wechat_account[0]).not.toHaveProperty('session_key_enc');
  });

  test('9. my birthday, once set, is on the card and the picker is gone', async () => {
    expect(store.get('card').birthday).toBeNull();
    expect($(mine, '#birthday-picker')).toBeTruthy();
    await fire(mine, '#birthday-picker', 'change', { value: '1990-08-15' });
    await until('the birthday', () => text(mine, '#birthday-value') === '1990年8月15日（如需修改请联系门店）');
    expect(answers('PATCH', '/api/v1/member/me')).toEqual([200]);
    expect($(mine, '#birthday-picker')).toBeUndefined();

    expect((await api.me()).birthday).toBe('1990-08-15');
    forgetAccountOnThisPhone();
    await mine.instance.load();
    expect(store.get('card').birthday).toBe('1990-08-15');
    expect(text(mine, '#birthday-value')).toBe('1990年8月15日（如需修改请联系门店）');
    expect($(mine, '#birthday-picker')).toBeUndefined();
  });

  test('10. asking for deletion: recorded once (202), the same request again (200), shown as pending', async () => {
    $(mine, '#delete').dispatchEvent('click');
    await until('the deletion request', () => !!mine.data.deletion);
    expect(wx.showModal.mock.calls[0][0].content).toContain('个人信息将被匿名化');
    expect(answers('POST', '/api/v1/member/deletion')).toEqual([202]);
    const first = mine.instance.deletionRequestId;
    expect(first).toBeGreaterThan(0);
    expect(text(mine, '#deletion-pending')).toContain('删除申请已提交，门店会尽快处理');
    expect($(mine, '#delete')).toBeUndefined();

    const again = await api.requestDeletion();
    expect(answers('POST', '/api/v1/member/deletion')).toEqual([202, 200]);
    expect(again).toMatchObject({ request_id: first, kind: 'deletion', status: 'received', handled_at: null });

    const account = await api.account();
    expect(account.deletion_requested_at).toBe(again.requested_at);
    // A new phone shows it too; until the store carries it out, the card still works.
    forgetAccountOnThisPhone();
    await mine.instance.load();
    expect(mine.data.step).toBe('member');
    expect(text(mine, '#deletion-pending')).toContain('删除申请已提交');
    expect($(mine, '#delete')).toBeUndefined();
  });

  test('the whole journey used one login and no request failed unexpectedly', () => {
    const logins = bridge.log.filter((r) => r.path === '/api/v1/member/auth/login');
    expect(logins).toHaveLength(1);
    const failures = bridge.log.filter((r) => r.status >= 500 || r.error);
    expect(failures).toEqual([]);
  });
});
