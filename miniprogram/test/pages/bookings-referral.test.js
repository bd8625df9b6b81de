const { mockBackend, envelope } = require('../helpers/mock-backend');
const { openPage, text, tap, flush, $, retry, allText } = require('../helpers/page');
const fx = require('../helpers/fixtures');

describe('我的预约', () => {
  const PAGE = 'pages/bookings/index';

  test('bookings with their code and status, and waitlist places', async () => {
    mockBackend({
      'GET /member/bookings': {
        status: 200,
        data: {
          items: [
            fx.booking(501, { code: 'B501XY' }),
            fx.booking(400, { status: 'checked_in', cancellable: false, via: 'waitlist', event_date: '2026-11-07' }),
            fx.booking(300, { status: 'cancelled', cancellable: false }),
          ],
          next_cursor: null,
        },
      },
      'GET /member/waitlist': {
        status: 200,
        data: { items: [{ id: 9, event_id: 2, event_title: '徐汇店会员日', event_date: '2026-12-04', slot_id: 21, starts_at: '2026-12-04T06:00:00Z', service: '光子嫩肤', status: 'waiting', position: 2, created_at: '2026-11-23T00:00:00Z' }] },
      },
    });
    const page = await openPage(PAGE);
    expect(text(page, '#booking-501')).toContain('待到店');
    expect(text(page, '#booking-501')).toContain('12月4日 周五 10:00–11:00');
    expect(text(page, '#booking-501')).toContain('预约码 B501XY');
    expect(text(page, '#booking-400')).toContain('已到店');
    expect(text(page, '#booking-400')).toContain('候补成功');
    expect(text(page, '#booking-300')).toContain('已取消');
    expect($(page, '#cancel-400')).toBeUndefined();
    expect(text(page, '#wait-9')).toContain('候补第 2 位');
    await tap(page, '#show-501');
    expect($(page, '#qr-501 >>> .qrcode-stub').dom.getAttribute('data-value')).toBe('B501XY');
  });

  test('cancel a booking; a refusal past the deadline is explained', async () => {
    const backend = mockBackend({
      'GET /member/bookings': { status: 200, data: { items: [fx.booking(501)], next_cursor: null } },
      'GET /member/waitlist': { status: 200, data: { items: [] } },
      'POST /member/bookings/501/cancel': { status: 409, data: envelope('cancel_deadline_passed', '已过取消截止时间，如需调整请联系门店') },
    });
    const page = await openPage(PAGE);
    await tap(page, '#cancel-501');
    await flush();
    expect(backend.callsTo('POST', '/member/bookings/501/cancel')).toHaveLength(1);
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '已过取消截止时间，如需调整请联系门店' }));
  });

  test('empty leads to the member days', async () => {
    mockBackend({
      'GET /member/bookings': { status: 200, data: { items: [], next_cursor: null } },
      'GET /member/waitlist': { status: 200, data: { items: [] } },
    });
    const page = await openPage(PAGE);
    expect(allText(page)).toContain('还没有预约');
    await tap(page, '.page >>> .status-action');
    expect(wx.switchTab).toHaveBeenCalledWith({ url: '/pages/events/index' });
  });

  test('error and retry', async () => {
    const backend = mockBackend({
      'GET /member/bookings': { status: 500, data: {} },
      'GET /member/waitlist': { status: 200, data: { items: [] } },
    });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('error');
    backend.set('GET /member/bookings', { status: 200, data: { items: [fx.booking(1)], next_cursor: null } });
    await retry(page);
    expect(page.data.status).toBe('ready');
  });
});

describe('邀请好友', () => {
  const PAGE = 'pages/referral/index';

  beforeEach(() => {
    wx.downloadFile = jest.fn((o) => setTimeout(() => o.success({ statusCode: 200, tempFilePath: 'wxfile://tmp/qr.png' }), 0));
  });

  test('shows my code and the mini-program code, and shares a card carrying the code', async () => {
    mockBackend({
      'GET /member/referral': { status: 200, data: { code: 'jMjPr5Xu', path: 'pages/index/index?ref=jMjPr5Xu', scene: 'r=jMjPr5Xu' } },
      'GET /member/rules': { status: 200, data: { referral: '推荐的好友首次到店消费后，您立即获得 500 分' } },
    });
    const page = await openPage(PAGE);
    expect(text(page, '#code')).toContain('jMjPr5Xu');
    expect(text(page, '#reward-text')).toBe('推荐的好友首次到店消费后，您立即获得 500 分');
    expect($(page, '#qrcode')).toBeTruthy();
    expect(page.data.qrcode).toBe('wxfile://tmp/qr.png');
    expect(wx.downloadFile.mock.calls[0][0].url).toBe('http://127.0.0.1:8080/api/v1/member/referral/qrcode');
    const share = page.instance.onShareAppMessage();
    expect(share.path).toBe('/pages/index/index?ref=jMjPr5Xu');
    expect(share.title).toContain('邀你一起成为会员');
    await tap(page, '#code');
    expect(wx.setClipboardData).toHaveBeenCalledWith({ data: 'jMjPr5Xu' });
  });

  test('the share card carries the artwork from the manifest, or WeChat\'s page snapshot without it', async () => {
    const referral = { status: 200, data: { code: 'jMjPr5Xu', path: 'pages/index/index?ref=jMjPr5Xu', scene: 'r=jMjPr5Xu' } };
    const backend = mockBackend({
      'GET /static/mp/manifest.json': { status: 404, data: envelope('not_found', '请求的资源不存在') },
      'GET /member/referral': referral,
    });
    const plain = await openPage(PAGE);
    expect(plain.data.status).toBe('ready');
    expect(plain.instance.onShareAppMessage()).not.toHaveProperty('imageUrl');
    backend.set('GET /static/mp/manifest.json', { status: 200, data: fx.manifest });
    const page = await openPage(PAGE);
    expect(page.instance.onShareAppMessage().imageUrl).toBe('http://127.0.0.1:8080/static/mp/referral-share.4a8a08f0.png');
  });

  test('a QR that WeChat could not make still leaves the code to share', async () => {
    wx.downloadFile = jest.fn((o) => setTimeout(() => o.success({ statusCode: 502, tempFilePath: '' }), 0));
    mockBackend({ 'GET /member/referral': { status: 200, data: { code: 'jMjPr5Xu', path: 'pages/index/index?ref=jMjPr5Xu', scene: 'r=jMjPr5Xu' } } });
    const page = await openPage(PAGE);
    expect(text(page, '#qrcode-error')).toContain('小程序码暂时没能生成');
    expect(text(page, '#code')).toContain('jMjPr5Xu');
  });

  test('error and retry', async () => {
    const backend = mockBackend({ 'GET /member/referral': { fail: 'request:fail' } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('error');
    backend.set('GET /member/referral', { status: 200, data: { code: 'C', path: 'pages/index/index?ref=C', scene: 'r=C' } });
    await retry(page);
    expect(page.data.status).toBe('ready');
  });
});

describe('隐私政策', () => {
  test('shows the policy version consent records', async () => {
    const page = await openPage('pages/privacy/policy');
    expect(allText(page)).toContain('版本 2026-11');
    expect(allText(page)).toContain('敏感个人信息');
  });
});

describe('status-block', () => {
  test('loading, empty with an action, error with retry', async () => {
    const simulate = require('miniprogram-simulate');
    const { load } = require('../helpers/page');
    const id = load('components/status-block/index', 'status-block');
    const comp = simulate.render(id, { status: 'loading', message: '正在加载' });
    comp.attach(document.createElement('parent-wrapper'));
    expect(comp.dom.textContent).toContain('正在加载');
    comp.setData({ status: 'empty', message: '空空的', actionText: '去看看' });
    expect(comp.dom.textContent).toContain('空空的');
    const onAction = jest.fn();
    comp.addEventListener('action', onAction);
    comp.querySelector('.status-action').dispatchEvent('tap');
    await flush();
    expect(onAction).toHaveBeenCalledTimes(1);
    comp.setData({ status: 'error', message: '失败了', actionText: '' });
    expect(comp.dom.textContent).toContain('重新加载');
    comp.setData({ status: '' });
    expect(comp.dom.textContent).toBe('');
  });
});
