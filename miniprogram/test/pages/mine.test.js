const { mockBackend, envelope } = require('../helpers/mock-backend');
const { openPage, text, tap, fire, flush, $, retry, allText } = require('../helpers/page');
const fx = require('../helpers/fixtures');
const store = require('../../miniprogram/utils/store');

const PAGE = 'pages/mine/index';
const notMember = { status: 404, data: envelope('not_member', '您还不是会员，加入后即可查看会员卡') };

// An element's text without any white space (text nodes side by side join without one).
function squeezed(page, selector) {
  return (text(page, selector) || '').replace(/\s+/g, '');
}

function login(over = {}) {
  return { status: 200, data: Object.assign({ token: 'tok', expires_at: '2026-12-31T00:00:00Z', customer_linked: false, member: null }, over) };
}

// Without a GET /member/account route the mock answers 404, as an older backend does: these
// tests keep the fallback (what this phone remembers) working.
describe('我的: joining (older backend, no account view)', () => {
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

describe('我的: joining, from the account view', () => {
  test('a member on a new phone who consented before is not asked again', async () => {
    const backend = mockBackend({
      'POST /member/auth/login': login(),
      'GET /member/account': { status: 200, data: fx.account({ consent: { policy_version: '2026-11', marketing: false, sensitive_health: true, consented_at: '2026-10-01T02:00:00Z' }, phone_masked: null, customer_linked: false, is_member: false }) },
      'GET /member/me': notMember,
    });
    const page = await openPage(PAGE);
    expect(backend.callsTo('GET', '/member/account')).toHaveLength(1);
    expect(page.data.step).toBe('phone');
    expect($(page, '#consent-step')).toBeUndefined();
    expect($(page, '#phone-step')).toBeTruthy();
    // Their choices are on file, and can be read and changed here.
    expect(page.data.choices).toEqual({ marketing: false, sensitive: true });
    expect(text(page, '#choice-marketing')).toContain('未接收');
    expect(text(page, '#choice-sensitive')).toContain('已同意门店记录');
    // Rights are for anyone who gave us something, member or not.
    expect($(page, '#export')).toBeTruthy();
    expect($(page, '#delete')).toBeTruthy();
    expect(wx.getStorageSync('memberhub.account')).toMatchObject({ consented: true, policyVersion: '2026-11', customerLinked: false });
  });

  test('a bound phone shows at the join step', async () => {
    mockBackend({
      'POST /member/auth/login': login({ customer_linked: true }),
      'GET /member/account': { status: 200, data: fx.account({ is_member: false }) },
      'GET /member/me': notMember,
    });
    const page = await openPage(PAGE);
    expect(page.data.step).toBe('join');
    expect(text(page, '#join-step')).toContain('已绑定手机号 138****1234');
  });

  test('a consent the backend no longer has (e.g. after a deletion) is asked for again', async () => {
    wx.setStorageSync('memberhub.account', { consented: true, customerLinked: true, isMember: true, phoneMasked: '138****1234', marketing: true });
    store.set('card', fx.card());
    mockBackend({
      'POST /member/auth/login': login(),
      'GET /member/account': { status: 200, data: fx.account({ consent: null, phone_masked: null, customer_linked: false, is_member: false }) },
      'GET /member/me': notMember,
    });
    const page = await openPage(PAGE);
    expect(page.data.step).toBe('consent');
    expect(page.data.phoneMasked).toBe('');
    expect(page.data.choices).toBeNull();
    expect(store.get('card')).toBeNull();
    expect($(page, '#export')).toBeUndefined();
  });

  test('the account view failing is an error with retry', async () => {
    const backend = mockBackend({
      'POST /member/auth/login': login(),
      'GET /member/account': { status: 500, data: envelope('internal_error', '服务器内部错误') },
      'GET /member/me': notMember,
    });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('error');
    expect(allText(page)).toContain('服务器开小差了');
    backend.set('GET /member/account', { status: 200, data: fx.account({ is_member: false, customer_linked: false, phone_masked: null }) });
    await retry(page);
    expect(page.data.status).toBe('ready');
    expect(page.data.step).toBe('phone');
  });
});

describe('我的: members', () => {
  function memberBackend(extra) {
    return mockBackend(Object.assign({
      'POST /member/auth/login': login({ customer_linked: true, member: fx.card() }),
      'GET /member/account': { status: 200, data: fx.account() },
      'GET /member/me': { status: 200, data: fx.card() },
      'GET /member/subscriptions': { status: 200, data: fx.subscriptions },
      'GET /member/referral': { status: 200, data: { code: 'jMjPr5Xu', path: 'pages/index/index?ref=jMjPr5Xu', scene: 'r=jMjPr5Xu' } },
    }, extra));
  }

  test('profile with the bound phone, subscriptions with what is left, and the entries', async () => {
    memberBackend();
    const page = await openPage(PAGE);
    expect(page.data.step).toBe('member');
    expect(text(page, '#profile')).toContain('叶怡');
    expect(text(page, '#profile')).toContain('MH00000007 · 138****1234');
    expect(text(page, '#tier')).toBe('黄金会员');
    expect(text(page, '#sub-booking')).toContain('会员日预约提醒');
    expect(text(page, '#sub-booking')).toContain('尚未订阅');
    expect(text(page, '#sub-points')).toContain('积分与等级提醒');
    expect(page.data.subscriptions.map((s) => s.scene)).toEqual(['booking', 'points', 'care']);
    expect(page.data.referralCode).toBe('jMjPr5Xu');
    expect(text(page, '#choice-marketing')).toContain('已同意接收，可随时关闭');
    expect(text(page, '#choice-sensitive')).toContain('未同意');
    $(page, '#go-bookings').dispatchEvent('click');
    await flush();
    expect(wx.navigateTo).toHaveBeenLastCalledWith({ url: '/pages/bookings/index' });
    $(page, '#go-referral').dispatchEvent('click');
    await flush();
    expect(wx.navigateTo).toHaveBeenLastCalledWith({ url: '/pages/referral/index' });
    expect(page.instance.onShareAppMessage().path).toBe('/pages/index/index?ref=jMjPr5Xu');
  });

  test('a refresh that fails keeps the page as it was', async () => {
    const backend = memberBackend();
    const page = await openPage(PAGE);
    backend.set('GET /member/me', { status: 500, data: envelope('internal_error', '服务器内部错误') });
    page.instance.onShow();
    await flush();
    expect(page.data.status).toBe('ready');
    expect(text(page, '#profile')).toContain('叶怡');
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

  test('marketing messages are turned off with a new consent under the version agreed to', async () => {
    const backend = memberBackend({
      'GET /member/account': { status: 200, data: fx.account({ consent: { policy_version: '2025-06', marketing: true, sensitive_health: false, consented_at: '2025-06-01T02:00:00Z' } }) },
      'POST /member/consent': (call) => ({ status: 200, data: Object.assign({ consented_at: '2026-11-24T02:00:00Z' }, call.data) }),
    });
    const page = await openPage(PAGE);
    expect(page.data.choices).toEqual({ marketing: true, sensitive: false });
    await fire(page, '#switch-marketing', 'change', { value: false });
    await flush();
    expect(backend.callsTo('POST', '/member/consent')[0].data).toEqual({ policy_version: '2025-06', marketing: false, sensitive_health: false });
    expect(page.data.choices).toEqual({ marketing: false, sensitive: false });
    expect(text(page, '#choice-marketing')).toContain('未接收');
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '已关闭生日祝福与活动消息' }));
  });

  test('a choice the backend did not take stays as it was', async () => {
    memberBackend({ 'POST /member/consent': { status: 429, data: envelope('rate_limited', '请求过于频繁') } });
    const page = await openPage(PAGE);
    await fire(page, '#switch-sensitive', 'change', { value: true });
    await flush();
    expect(page.data.choices).toEqual({ marketing: true, sensitive: false });
    expect(page.data.savingChoice).toBe('');
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '操作有点频繁，请稍等片刻再试' }));
  });

  test('a birthday on the card is shown, without a picker', async () => {
    memberBackend({ 'GET /member/me': { status: 200, data: fx.card({ birthday: '1990-08-15' }) } });
    const page = await openPage(PAGE);
    expect(text(page, '#birthday-value')).toBe('1990年8月15日（如需修改请联系门店）');
    expect($(page, '#birthday-picker')).toBeUndefined();
  });

  test('birthday is set once, after confirming', async () => {
    const backend = memberBackend({ 'PATCH /member/me': { status: 200, data: fx.card({ birthday: '1992-05-01' }) } });
    const page = await openPage(PAGE);
    expect($(page, '#birthday-picker')).toBeTruthy();
    expect($(page, '#birthday-value')).toBeUndefined();
    await fire(page, '#birthday-picker', 'change', { value: '1992-05-01' });
    await flush();
    expect(wx.showModal.mock.calls[0][0].content).toContain('1992年5月1日');
    expect(backend.callsTo('PATCH', '/member/me')[0].data).toEqual({ birthday: '1992-05-01' });
    expect(text(page, '#birthday-value')).toBe('1992年5月1日（如需修改请联系门店）');
    expect($(page, '#birthday-picker')).toBeUndefined();
  });

  test('a birthday set meanwhile (e.g. at the desk) is read back from the card', async () => {
    const backend = memberBackend({ 'PATCH /member/me': { status: 409, data: envelope('birthday_already_set', '生日已设置，如需修改请联系门店') } });
    const page = await openPage(PAGE);
    backend.set('GET /member/me', { status: 200, data: fx.card({ birthday: '1988-02-03' }) });
    await fire(page, '#birthday-picker', 'change', { value: '1992-05-01' });
    await flush();
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '生日已设置，如需修改请联系门店' }));
    expect(text(page, '#birthday-value')).toBe('1988年2月3日（如需修改请联系门店）');
  });

  test('an older backend’s card without the birthday: a birthday set before is still recognised', async () => {
    const old = fx.card();
    delete old.birthday;
    memberBackend({
      'GET /member/me': { status: 200, data: old },
      'PATCH /member/me': { status: 409, data: envelope('birthday_already_set', '生日已设置，如需修改请联系门店') },
    });
    const page = await openPage(PAGE);
    await fire(page, '#birthday-picker', 'change', { value: '1992-05-01' });
    await flush();
    expect(text(page, '#birthday-value')).toBe('已设置（如需修改请联系门店）');
  });

  test('the data export shows what it holds, kind by kind, and copies the JSON', async () => {
    const backend = memberBackend({ 'POST /member/data-export': { status: 200, data: fx.dataExport() } });
    const page = await openPage(PAGE);
    expect($(page, '#export-result')).toBeUndefined();
    $(page, '#export').dispatchEvent('click');
    await flush();
    expect(backend.callsTo('POST', '/member/data-export')).toHaveLength(1);
    expect(backend.callsTo('POST', '/member/data-export')[0].data).toBeUndefined();
    expect(wx.showLoading).toHaveBeenCalled();
    expect(wx.hideLoading).toHaveBeenCalled();
    expect(text(page, '#export-summary')).toBe('生成于 2026年11月24日，共 10 条记录');
    expect(squeezed(page, '#export-customer')).toBe('个人资料1条');
    expect(squeezed(page, '#export-consumptions')).toBe('消费记录2条');
    expect(squeezed(page, '#export-points_entries')).toBe('积分明细3条');
    expect(squeezed(page, '#export-bookings')).toBe('会员日预约0条');
    expect(page.data.exported.kinds.map((k) => k.key)).toEqual(['customer', 'wechat_account', 'consents', 'member', 'consumptions', 'points_entries', 'vouchers', 'bookings']);

    await tap(page, '#export-copy');
    expect(wx.setClipboardData).toHaveBeenCalledTimes(1);
    const copied = JSON.parse(wx.setClipboardData.mock.calls[0][0].data);
    expect(copied.request_id).toBe(31);
    expect(copied.data.customer[0].phone).toBe('13812341234');
    expect(wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ title: '已复制，可粘贴到备忘录或发给自己保存' }));
  });

  test('a data export that fails says why and shows nothing', async () => {
    memberBackend({ 'POST /member/data-export': { status: 500, data: envelope('internal_error', '服务器内部错误') } });
    const page = await openPage(PAGE);
    $(page, '#export').dispatchEvent('click');
    await flush();
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '服务器开小差了，请稍后再试' }));
    expect($(page, '#export-result')).toBeUndefined();
    expect(page.data.exporting).toBe(false);
  });

  test('deletion is confirmed first, then shown as submitted with its date', async () => {
    const backend = memberBackend({
      'POST /member/deletion': { status: 202, data: { request_id: 12, kind: 'deletion', status: 'received', requested_at: '2026-11-24T03:00:00Z', handled_at: null } },
    });
    const page = await openPage(PAGE);
    expect($(page, '#deletion-pending')).toBeUndefined();

    wx.showModal = jest.fn((o) => setTimeout(() => o.success({ confirm: false, cancel: true }), 0));
    $(page, '#delete').dispatchEvent('click');
    await flush();
    expect(backend.callsTo('POST', '/member/deletion')).toHaveLength(0);

    wx.showModal = jest.fn((o) => setTimeout(() => o.success({ confirm: true, cancel: false }), 0));
    $(page, '#delete').dispatchEvent('click');
    await flush();
    expect(wx.showModal.mock.calls[0][0].content).toBe('删除后个人信息将被匿名化，消费与积分记录按规定保留；门店处理后当前登录将失效。');
    expect(backend.callsTo('POST', '/member/deletion')).toHaveLength(1);
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '已提交，门店会尽快处理' }));
    expect(text(page, '#deletion-pending')).toContain('删除申请已提交，门店会尽快处理');
    expect(text(page, '#deletion-pending')).toContain('提交于 2026年11月24日');
    expect($(page, '#delete')).toBeUndefined();
    expect(page.instance.deletionRequestId).toBe(12);
  });

  test('an open deletion request from the account view is shown instead of the button', async () => {
    memberBackend({ 'GET /member/account': { status: 200, data: fx.account({ deletion_requested_at: '2026-11-20T15:30:00Z' }) } });
    const page = await openPage(PAGE);
    expect($(page, '#delete')).toBeUndefined();
    // 23:30 in China: the China date.
    expect(text(page, '#deletion-pending')).toContain('提交于 2026年11月20日');
    // The export stays available meanwhile.
    expect($(page, '#export')).toBeTruthy();
  });

  test('a deletion request that fails leaves the button', async () => {
    memberBackend({ 'POST /member/deletion': { status: 429, data: envelope('rate_limited', '请求过于频繁') } });
    const page = await openPage(PAGE);
    $(page, '#delete').dispatchEvent('click');
    await flush();
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '操作有点频繁，请稍等片刻再试' }));
    expect($(page, '#delete')).toBeTruthy();
    expect(page.data.deletion).toBeNull();
  });

  test('an older backend without the rights endpoints gets a calm answer', async () => {
    const backend = memberBackend({ 'GET /member/account': undefined });
    const page = await openPage(PAGE);
    expect(page.data.step).toBe('member');
    expect(page.data.choices).toBeNull();
    $(page, '#export').dispatchEvent('click');
    await flush();
    expect(backend.callsTo('POST', '/member/data-export')).toHaveLength(1);
    expect(wx.showModal.mock.calls[0][0]).toMatchObject({ title: '线上申请即将开放', showCancel: false });
    expect($(page, '#export-result')).toBeUndefined();

    $(page, '#delete').dispatchEvent('click');
    await flush();
    expect(wx.showModal.mock.calls[1][0].title).toBe('申请删除个人信息');
    expect(backend.callsTo('POST', '/member/deletion')).toHaveLength(1);
    expect(wx.showModal.mock.calls[2][0]).toMatchObject({ title: '线上申请即将开放', showCancel: false });
    expect($(page, '#delete')).toBeTruthy();
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
