const { mockBackend, envelope } = require('../helpers/mock-backend');
const { openPage, text, tap, flush, $, retry, allText } = require('../helpers/page');
const fx = require('../helpers/fixtures');
const { MESSAGES } = require('../../miniprogram/utils/errors');

const PAGE = 'pages/staff-bind/index';
// What the console puts in the code's scene (24 URL-safe characters), as WeChat hands it over.
const TICKET = 'Xb3_k9-QpLm2Zt7Wc4Rn8Ya1';
const INVALID = { status: 400, data: envelope('invalid_ticket', '绑定码无效或已过期，请在后台重新生成') };

function bindCalls(backend) {
  return backend.callsTo('POST', '/member/staff-binding');
}

describe('员工绑定', () => {
  test('a scanned code signs this WeChat in, then asks to confirm before binding', async () => {
    const backend = mockBackend({ 'GET /member/subscriptions': { status: 200, data: fx.subscriptions } });
    const page = await openPage(PAGE, { scene: encodeURIComponent(TICKET) });
    expect(wx.login).toHaveBeenCalledTimes(1);
    expect(backend.callsTo('POST', '/member/auth/login')).toHaveLength(1);
    expect(page.data.status).toBe('confirm');
    expect(text(page, '#confirm-text')).toBe('将本微信绑定为员工账号，用于接收营销活动的测试消息');
    expect(text(page, '#confirm-bind')).toBe('确认绑定');
    // Nothing is bound until the member of staff says so.
    expect(bindCalls(backend)).toHaveLength(0);
  });

  test('without a ticket it says what to do and neither signs in nor binds', async () => {
    const backend = mockBackend({});
    const page = await openPage(PAGE, {});
    expect(page.data.status).toBe('missing');
    expect(allText(page)).toContain('没有读取到绑定码');
    expect(allText(page)).toContain('请在员工后台重新生成绑定小程序码');
    expect($(page, '#confirm-bind')).toBeUndefined();
    expect(wx.login).not.toHaveBeenCalled();
    expect(backend.calls).toHaveLength(0);
  });

  test('confirming binds with the decoded ticket, shows whose account it is, and offers the subscription', async () => {
    let quota = 0;
    const backend = mockBackend({
      'GET /member/subscriptions': () => ({ status: 200, data: fx.subscriptions }),
      'POST /member/staff-binding': { status: 200, data: { staff_display_name: '张老师' } },
      'POST /member/subscriptions': () => {
        quota += 1;
        const quotas = Object.assign({}, fx.subscriptions.quotas, { 'SBX-BIRTHDAY': quota, 'SBX-RECALL': quota, 'SBX-CARE': quota });
        return { status: 200, data: { scenes: fx.subscriptions.scenes, quotas } };
      },
    });
    // The scene survives an encoding that touches every character it may hold.
    const page = await openPage(PAGE, { scene: TICKET.replace(/[-_]/g, (c) => `%${c.charCodeAt(0).toString(16)}`) });
    await tap(page, '#confirm-bind');
    expect(bindCalls(backend)).toHaveLength(1);
    expect(bindCalls(backend)[0].data).toEqual({ ticket: TICKET });
    expect(bindCalls(backend)[0].header.Authorization).toBe('Bearer tok-1');
    expect(page.data.status).toBe('bound');
    expect(allText(page)).toContain('已绑定：张老师');
    expect(text(page, '#subscribe-card')).toContain('需要先订阅才能收到');
    expect(text(page, '#subscription-text')).toBe('尚未订阅测试消息');

    wx.requestSubscribeMessage = jest.fn((o) => setTimeout(() => o.success({
      errMsg: 'requestSubscribeMessage:ok', 'SBX-BIRTHDAY': 'accept', 'SBX-RECALL': 'accept', 'SBX-CARE': 'accept',
    }), 0));
    // Synchronously inside the handler: WeChat shows the popup only then.
    const pending = page.instance.onSubscribe();
    expect(wx.requestSubscribeMessage).toHaveBeenCalledTimes(1);
    expect(wx.requestSubscribeMessage.mock.calls[0][0].tmplIds).toEqual(fx.subscriptions.scenes.care);
    await pending;
    await flush();
    expect(backend.callsTo('POST', '/member/subscriptions')[0].data).toEqual({
      results: { 'SBX-BIRTHDAY': 'accept', 'SBX-RECALL': 'accept', 'SBX-CARE': 'accept' },
    });
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '订阅成功，测试消息会发到本微信' }));
    expect(text(page, '#subscription-text')).toBe('已订阅，还可接收 1 条测试消息');
  });

  test('a plain link with ?ticket= works the same way', async () => {
    const backend = mockBackend({ 'POST /member/staff-binding': { status: 200, data: { staff_display_name: '李护士' } } });
    const page = await openPage(PAGE, { ticket: TICKET });
    await tap(page, '#confirm-bind');
    expect(bindCalls(backend)[0].data).toEqual({ ticket: TICKET });
    expect(allText(page)).toContain('已绑定：李护士');
  });

  test('a used or expired ticket is explained and never sent again', async () => {
    const backend = mockBackend({ 'POST /member/staff-binding': INVALID });
    const page = await openPage(PAGE, { scene: TICKET });
    await tap(page, '#confirm-bind');
    expect(page.data.status).toBe('invalid');
    expect(MESSAGES.invalid_ticket).toBe('绑定码无效或已过期，请在后台重新生成');
    expect(text(page, '#invalid')).toContain('绑定码无效或已过期，请在后台重新生成');
    expect($(page, '#confirm-bind')).toBeUndefined();
    expect($(page, '.page >>> .status-action')).toBeUndefined();
    await page.instance.onConfirm();
    expect(bindCalls(backend)).toHaveLength(1);
    await tap(page, '#go-home');
    expect(wx.switchTab).toHaveBeenCalledWith({ url: '/pages/index/index' });
  });

  test('a network failure keeps the ticket for another try', async () => {
    const backend = mockBackend({ 'POST /member/staff-binding': { fail: 'request:fail net::ERR_CONNECTION_RESET' } });
    const page = await openPage(PAGE, { scene: TICKET });
    await tap(page, '#confirm-bind');
    expect(page.data.status).toBe('confirm');
    expect(text(page, '#bind-error')).toBe(MESSAGES.network);
    expect(page.data.busy).toBe(false);
    backend.set('POST /member/staff-binding', { status: 200, data: { staff_display_name: '张老师' } });
    await tap(page, '#confirm-bind');
    expect(bindCalls(backend)).toHaveLength(2);
    expect(bindCalls(backend)[1].data).toEqual({ ticket: TICKET });
    expect(allText(page)).toContain('已绑定：张老师');
  });

  test('a sign-in that fails on the network offers a retry before anything else', async () => {
    const backend = mockBackend({ 'POST /member/auth/login': { fail: 'request:fail timeout' } });
    const page = await openPage(PAGE, { scene: TICKET });
    expect(page.data.status).toBe('error');
    expect(allText(page)).toContain(MESSAGES.timeout);
    expect($(page, '#confirm-bind')).toBeUndefined();
    backend.set('POST /member/auth/login', { status: 200, data: { token: 'tok-2', expires_at: '2026-12-31T00:00:00Z', customer_linked: false, member: null } });
    await retry(page);
    expect(page.data.status).toBe('confirm');
    expect(bindCalls(backend)).toHaveLength(0);
  });

  test('with no templates yet the subscribe button says so instead of opening nothing', async () => {
    const backend = mockBackend({
      'GET /member/subscriptions': { status: 500, data: {} },
      'POST /member/staff-binding': { status: 200, data: { staff_display_name: '张老师' } },
    });
    const page = await openPage(PAGE, { scene: TICKET });
    await tap(page, '#confirm-bind');
    await tap(page, '#subscribe');
    expect(wx.requestSubscribeMessage).not.toHaveBeenCalled();
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '暂时无法订阅，请稍后再试' }));
    expect(backend.callsTo('GET', '/member/subscriptions')).toHaveLength(2);
  });
});
