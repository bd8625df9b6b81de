const { mockBackend, envelope } = require('../helpers/mock-backend');
const { openPage, text, tap, fire, flush, $, retry, allText } = require('../helpers/page');
const fx = require('../helpers/fixtures');
const store = require('../../miniprogram/utils/store');

const PAGE = 'pages/mine/index';
const notMember = { status: 404, data: envelope('not_member', '您还不是会员，加入后即可查看会员卡') };

function login(over = {}) {
  return { status: 200, data: Object.assign({ token: 'tok', expires_at: '2026-12-31T00:00:00Z', customer_linked: false, member: null }, over) };
}

describe('我的: joining', () => {
  test('a new member is asked for consent first; the button waits for the privacy policy', async () => {
    const backend = mockBackend({
      'POST /member/auth/login': login(),
      'GET /member/me': notMember,
      'POST /member/consent': { status: 200, data: { policy_version: '2026-11', marketing: true, sensitive_health: false, consented_at: '2026-11-24T02:00:00Z' } },
    });
    const page = await openPage(PAGE);
    expect(page.data.step).toBe('consent');
    expect($(page, '#consent-step')).toBeTruthy();
    expect($(page, '#bind-phone')).toBeUndefined();
    await tap(page, '#consent-submit');
    expect(backend.callsTo('POST', '/member/consent')).toHaveLength(0);

    await fire(page, '#consent-policy', 'change', { checked: true });
    await fire(page, '#consent-marketing', 'change', { checked: true });
    await tap(page, '#consent-submit');
    await flush();
    expect(backend.callsTo('POST', '/member/consent')[0].data).toEqual({ policy_version: '2026-11', marketing: true, sensitive_health: false });
    expect(page.data.step).toBe('phone');
    expect($(page, '#phone-step')).toBeTruthy();
  });

  test('the getPhoneNumber button’s code binds the phone; declining sends nothing', async () => {
    wx.setStorageSync('memberhub.account', { consented: true });
    const backend = mockBackend({
      'POST /member/auth/login': login(),
      'GET /member/me': notMember,
      'POST /member/phone': { status: 200, data: { phone_masked: '136****0077', linked_existing_customer: false } },
    });
    const page = await openPage(PAGE);
    expect(page.data.step).toBe('phone');

    await fire(page, '#bind-phone', 'getphonenumber', { errMsg: 'getPhoneNumber:fail user deny' });
    expect(backend.callsTo('POST', '/member/phone')).toHaveLength(0);
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '需要绑定手机号才能开通会员哦' }));

    await fire(page, '#bind-phone', 'getphonenumber', { errMsg: 'getPhoneNumber:ok', code: 'phone-code-1' });
    await flush();
    expect(backend.callsTo('POST', '/member/phone')[0].data).toEqual({ code: 'phone-code-1' });
    expect(page.data.step).toBe('join');
    expect(text(page, '#join-step')).toContain('已绑定手机号 136****0077');
  });

  test('if the backend has no record of consent, binding goes back to the consent step', async () => {
    wx.setStorageSync('memberhub.account', { consented: true });
    mockBackend({
      'POST /member/auth/login': login(),
      'GET /member/me': notMember,
      'POST /member/phone': { status: 409, data: envelope('consent_required', '请先阅读并同意隐私政策') },
    });
    const page = await openPage(PAGE);
    await fire(page, '#bind-phone', 'getphonenumber', { code: 'c' });
    await flush();
    expect(page.data.step).toBe('consent');
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '请先阅读并同意隐私政策' }));
  });

  test('joining sends the friend’s referral code and opens the card', async () => {
    wx.setStorageSync('memberhub.account', { consented: true, customerLinked: true, phoneMasked: '136****0077' });
    wx.setStorageSync('memberhub.referral', 'AbC234');
    const backend = mockBackend({
      'POST /member/auth/login': login({ customer_linked: true }),
      'GET /member/me': notMember,
      'POST /member/join': { status: 201, data: fx.card({ tier: fx.tiers.normal, points_balance: 0 }) },
      'GET /member/subscriptions': { status: 200, data: fx.subscriptions },
    });
    const page = await openPage(PAGE);
    expect(page.data.step).toBe('join');
    await tap(page, '#join');
    await flush();
    expect(backend.callsTo('POST', '/member/join')[0].data).toEqual({ referral_code: 'AbC234' });
    expect(wx.getStorageSync('memberhub.referral')).toBe('');
    expect(store.get('card').tier.code).toBe('normal');
    expect(wx.switchTab).toHaveBeenCalledWith({ url: '/pages/index/index' });
    expect(page.data.step).toBe('member');
  });

  test('a stale referral code does not keep the member out', async () => {
    wx.setStorageSync('memberhub.account', { consented: true, customerLinked: true });
    wx.setStorageSync('memberhub.referral', 'gone');
    mockBackend({
      'GET /member/me': notMember,
      'POST /member/join': { status: 400, data: envelope('validation_failed', '推荐码无效', { field: 'referral_code' }) },
    });
    const page = await openPage(PAGE);
    await tap(page, '#join');
    await flush();
    expect(wx.getStorageSync('memberhub.referral')).toBe('');
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '邀请码已失效，请再点一次开通' }));
  });

  test('error and retry', async () => {
    const backend = mockBackend({ 'POST /member/auth/login': login(), 'GET /member/me': { status: 503, data: envelope('wechat_unavailable', '微信服务暂不可用，请稍后再试') } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('error');
    expect(allText(page)).toContain('微信服务暂时不可用');
    backend.set('GET /member/me', notMember);
    await retry(page);
    expect(page.data.status).toBe('ready');
    expect(page.data.step).toBe('consent');
  });
});

describe('我的: members', () => {
  function memberBackend(extra) {
    return mockBackend(Object.assign({
      'POST /member/auth/login': login({ customer_linked: true, member: fx.card() }),
      'GET /member/me': { status: 200, data: fx.card() },
      'GET /member/subscriptions': { status: 200, data: fx.subscriptions },
      'GET /member/referral': { status: 200, data: { code: 'jMjPr5Xu', path: 'pages/index/index?ref=jMjPr5Xu', scene: 'r=jMjPr5Xu' } },
    }, extra));
  }

  test('profile, subscriptions with what is left, and the entries', async () => {
    memberBackend();
    const page = await openPage(PAGE);
    expect(page.data.step).toBe('member');
    expect(text(page, '#profile')).toContain('叶怡');
    expect(text(page, '#tier')).toBe('黄金会员');
    expect(text(page, '#sub-booking')).toContain('会员日预约提醒');
    expect(text(page, '#sub-booking')).toContain('尚未订阅');
    expect(text(page, '#sub-points')).toContain('积分与等级提醒');
    expect(page.data.subscriptions.map((s) => s.scene)).toEqual(['booking', 'points', 'care']);
    expect(page.data.referralCode).toBe('jMjPr5Xu');
    $(page, '#go-bookings').dispatchEvent('click');
    await flush();
    expect(wx.navigateTo).toHaveBeenLastCalledWith({ url: '/pages/bookings/index' });
    $(page, '#go-referral').dispatchEvent('click');
    await flush();
    expect(wx.navigateTo).toHaveBeenLastCalledWith({ url: '/pages/referral/index' });
    expect(page.instance.onShareAppMessage().path).toBe('/pages/index/index?ref=jMjPr5Xu');
  });

  test('subscribing asks WeChat from the tap and reports the answers', async () => {
    const after = JSON.parse(JSON.stringify(fx.subscriptions));
    after.quotas['SBX-POINTS-EXPIRING'] = 3;
    after.quotas['SBX-TIER-CHANGED'] = 1;
    const backend = memberBackend({ 'POST /member/subscriptions': { status: 200, data: after } });
    wx.requestSubscribeMessage = jest.fn((o) => setTimeout(() => o.success({ errMsg: 'requestSubscribeMessage:ok', 'SBX-POINTS-EXPIRING': 'accept', 'SBX-TIER-CHANGED': 'accept', other: 'accept' }), 0));
    const page = await openPage(PAGE);
    const pending = page.instance.onSubscribe({ currentTarget: { dataset: { scene: 'points' } } });
    expect(wx.requestSubscribeMessage).toHaveBeenCalledWith(expect.objectContaining({ tmplIds: ['SBX-POINTS-EXPIRING', 'SBX-TIER-CHANGED'] }));
    await pending;
    await flush();
    expect(backend.callsTo('POST', '/member/subscriptions')[0].data).toEqual({ results: { 'SBX-POINTS-EXPIRING': 'accept', 'SBX-TIER-CHANGED': 'accept' } });
    expect(text(page, '#sub-points')).toContain('还可接收 1 次提醒');
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '订阅成功，到时会提醒您' }));
  });

  test('birthday is set once, after confirming', async () => {
    const backend = memberBackend({ 'PATCH /member/me': { status: 200, data: fx.card() } });
    const page = await openPage(PAGE);
    expect($(page, '#birthday-picker')).toBeTruthy();
    await fire(page, '#birthday-picker', 'change', { value: '1992-05-01' });
    await flush();
    expect(wx.showModal.mock.calls[0][0].content).toContain('1992年5月1日');
    expect(backend.callsTo('PATCH', '/member/me')[0].data).toEqual({ birthday: '1992-05-01' });
    expect(text(page, '#birthday-value')).toBe('1992年5月1日（如需修改请联系门店）');
    expect($(page, '#birthday-picker')).toBeUndefined();
  });

  test('a birthday set before (e.g. at the desk) is recognised', async () => {
    memberBackend({ 'PATCH /member/me': { status: 409, data: envelope('birthday_already_set', '生日已设置，如需修改请联系门店') } });
    const page = await openPage(PAGE);
    await fire(page, '#birthday-picker', 'change', { value: '1992-05-01' });
    await flush();
    expect(text(page, '#birthday-value')).toBe('已设置（如需修改请联系门店）');
  });

  test('data export and deletion requests, with a calm answer while the backend does not take them yet', async () => {
    const backend = memberBackend({ 'POST /member/data-export': { status: 202, data: {} } });
    const page = await openPage(PAGE);
    $(page, '#export').dispatchEvent('click');
    await flush();
    expect(wx.showModal.mock.calls[0][0].title).toBe('导出我的个人信息');
    expect(backend.callsTo('POST', '/member/data-export')).toHaveLength(1);
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '已收到您的导出申请，准备好后会通知您' }));

    $(page, '#delete').dispatchEvent('click');
    await flush();
    expect(wx.showModal.mock.calls[1][0].title).toBe('申请删除账户');
    expect(backend.callsTo('POST', '/member/deletion')).toHaveLength(1);
    expect(wx.showModal.mock.calls[2][0]).toMatchObject({ title: '线上申请即将开放', showCancel: false });
  });

  test('the develop build offers a sandbox test phone; release never does', async () => {
    wx.setStorageSync('memberhub.sandbox', '');
    mockBackend({ 'POST /member/auth/login': login(), 'GET /member/me': notMember });
    wx.setStorageSync('memberhub.account', { consented: true });
    const dev = await openPage(PAGE);
    expect($(dev, '#sandbox-phone')).toBeTruthy();
    wx.setStorageSync('memberhub.sandboxPhone', '13977183854');
    const backend = mockBackend({
      'POST /member/phone': { status: 200, data: { phone_masked: '139****3854', linked_existing_customer: true } },
      // The control plane is outside /api/v1, so the mock keys it by its whole path.
      'POST /__sandbox/wechat/control/phone-code': { status: 200, data: { ok: true } },
    });
    await tap(dev, '#sandbox-phone');
    await flush();
    const control = wx.request.mock.calls.find((c) => c[0].url.endsWith('/__sandbox/wechat/control/phone-code'));
    expect(control[0].data).toEqual({ code: expect.stringMatching(/^dev-phone-/), phone: '13977183854' });
    expect(backend.callsTo('POST', '/member/phone')[0].data).toEqual({ code: control[0].data.code });
    expect(dev.data.step).toBe('join');

    wx.getAccountInfoSync = () => ({ miniProgram: { envVersion: 'release' } });
    const release = await openPage(PAGE);
    expect($(release, '#sandbox-phone')).toBeUndefined();
  });
});
