const { mockBackend, envelope } = require('../helpers/mock-backend');
const { openPage, text, tap, flush, $, retry, allText } = require('../helpers/page');
const fx = require('../helpers/fixtures');

const LIST = 'pages/events/index';
const DETAIL = 'pages/event/detail';
const SERVER_TIME = '2026-11-24T02:00:00.000Z';
const T0 = Date.parse(SERVER_TIME);

afterEach(() => jest.restoreAllMocks());

// The phone's clock is 10 minutes fast; countdowns must follow the server's.
function phoneClock(ms) {
  jest.spyOn(Date, 'now').mockReturnValue(ms + 10 * 60 * 1000);
}

describe('会员日 (tab)', () => {
  test('lists member days with my opening time and a countdown before it, from the server clock', async () => {
    phoneClock(T0);
    mockBackend({
      'GET /member/events': {
        status: 200,
        data: {
          server_time: SERVER_TIME,
          items: [
            fx.event(1, { left: 12 }),
            fx.event(2, { title: '徐汇店会员日', store_name: '徐汇店', my_opens_at: '2026-11-24T03:05:09Z', open_now: false, left: 30 }),
            fx.event(3, { title: '星钻专场', eligible: false, min_tier_name: '星钻会员', left: 0 }),
          ],
        },
      },
    });
    const page = await openPage(LIST);
    expect(text(page, '#event-1')).toContain('预约中');
    expect(text(page, '#event-1')).toContain('剩余 12 个名额');
    expect(text(page, '#event-2')).toContain('即将开放');
    expect(text(page, '#countdown-2')).toBe('距您的预约开放还有 01:05:09');
    expect(text(page, '#event-2')).toContain('您的预约开放时间：11月24日 11:05');
    expect(text(page, '#event-3')).toContain('星钻会员及以上专享');
    expect(text(page, '#event-3')).toContain('名额已满，可加入候补');
    expect($(page, '#countdown-1')).toBeUndefined();
    page.instance.onUnload();
  });

  test('the countdown runs and the list reloads when my opening time comes', async () => {
    phoneClock(T0);
    const backend = mockBackend({
      'GET /member/events': { status: 200, data: { server_time: SERVER_TIME, items: [fx.event(2, { my_opens_at: '2026-11-24T02:00:05Z', open_now: false })] } },
    });
    const page = await openPage(LIST);
    page.instance.stopTicking();
    expect(text(page, '#countdown-2')).toBe('距您的预约开放还有 00:00:05');
    phoneClock(T0 + 2000);
    page.instance.tick();
    await flush();
    expect(text(page, '#countdown-2')).toBe('距您的预约开放还有 00:00:03');
    expect(backend.callsTo('GET', '/member/events')).toHaveLength(1);
    phoneClock(T0 + 6000);
    page.instance.tick();
    await flush();
    expect(backend.callsTo('GET', '/member/events')).toHaveLength(2);
  });

  test('tapping a member day opens it', async () => {
    mockBackend({ 'GET /member/events': { status: 200, data: { server_time: SERVER_TIME, items: [fx.event(1)] } } });
    const page = await openPage(LIST);
    page.instance.onUnload();
    await tap(page, '#event-1');
    expect(wx.navigateTo).toHaveBeenCalledWith({ url: '/pages/event/detail?id=1' });
  });

  test('empty, not a member, error', async () => {
    const backend = mockBackend({ 'GET /member/events': { status: 200, data: { server_time: SERVER_TIME, items: [] } } });
    const empty = await openPage(LIST);
    empty.instance.onUnload();
    expect(allText(empty)).toContain('近期还没有会员日活动');

    backend.set('GET /member/events', { status: 404, data: envelope('not_member', '您还不是会员') });
    const invite = await openPage(LIST);
    invite.instance.onUnload();
    expect(text(invite, '#join-invite')).toContain('会员日是会员专属的礼遇');

    backend.set('GET /member/events', { fail: 'request:fail' });
    const failed = await openPage(LIST);
    failed.instance.onUnload();
    expect(failed.data.status).toBe('error');
    backend.set('GET /member/events', { status: 200, data: { server_time: SERVER_TIME, items: [fx.event(1)] } });
    await retry(failed);
    expect(failed.data.status).toBe('ready');
  });

  test('the banner comes from the artwork manifest, also when it arrives after the page opened', async () => {
    const backend = mockBackend({
      'GET /static/mp/manifest.json': { fail: 'request:fail' },
      'GET /member/events': { status: 200, data: { server_time: SERVER_TIME, items: [fx.event(1)] } },
    });
    const page = await openPage(LIST);
    expect($(page, '.banner')).toBeUndefined();
    // The launch's request failed; another page's succeeds, and this one hears of it.
    backend.set('GET /static/mp/manifest.json', { status: 200, data: fx.manifest });
    await require('../../miniprogram/utils/assets').load();
    await flush();
    expect(page.data.banner).toBe('http://127.0.0.1:8080/static/mp/event-banner.92eb5ffe.png');
    expect($(page, '.banner')).toBeTruthy();
    expect(text(page, '#event-1')).toContain('静安店会员日');
    page.instance.onUnload();
  });

  test('without the manifest there is no banner and the list still shows', async () => {
    mockBackend({
      'GET /static/mp/manifest.json': { fail: 'request:fail' },
      'GET /member/events': { status: 200, data: { server_time: SERVER_TIME, items: [fx.event(1)] } },
    });
    const page = await openPage(LIST);
    page.instance.onUnload();
    expect(page.data.banner).toBe('');
    expect($(page, '.banner')).toBeUndefined();
    expect(page.data.status).toBe('ready');
    expect(text(page, '#event-1')).toContain('预约中');
  });
});

describe('会员日详情', () => {
  function detail(over = {}, slots) {
    return Object.assign(fx.event(1), { server_time: SERVER_TIME, slots: slots || [fx.slot(11), fx.slot(12, { starts_at: '2026-12-04T03:00:00Z', ends_at: '2026-12-04T04:00:00Z', left: 0, booked: 6, full: true })] }, over);
  }

  const booked = { booking: fx.booking(501, { slot_id: 11, code: 'B501XY' }) };

  async function open(routes) {
    phoneClock(T0);
    const backend = mockBackend(Object.assign({
      'GET /member/subscriptions': { status: 200, data: fx.subscriptions },
      'GET /member/events/1': { status: 200, data: detail() },
    }, routes));
    const page = await openPage(DETAIL, { id: '1' });
    page.instance.stopTicking();
    return { page, backend };
  }

  test('slots show what is left and what I can do', async () => {
    const { page } = await open();
    expect(text(page, '#slot-11')).toContain('10:00–11:00');
    expect(text(page, '#slot-11')).toContain('水光补水体验');
    expect(text(page, '#slot-11')).toContain('剩余 4 / 6');
    expect(text(page, '#book-11')).toBe('预约');
    expect(text(page, '#slot-12')).toContain('已约满');
    expect(text(page, '#waitlist-12')).toBe('加入候补');
  });

  test('booking asks for the reminder subscription from the tap itself, reports it, then books with an Idempotency-Key', async () => {
    const order = [];
    const { page, backend } = await open({
      'POST /member/subscriptions': (call) => {
        order.push('report');
        return { status: 200, data: fx.subscriptions };
      },
      'POST /member/bookings': () => {
        order.push('book');
        return { status: 201, data: booked };
      },
    });
    wx.requestSubscribeMessage = jest.fn((o) => {
      order.push('popup');
      setTimeout(() => o.success({
        errMsg: 'requestSubscribeMessage:ok',
        'SBX-BOOKING-CONFIRMED': 'accept',
        'SBX-BOOKING-REMINDER': 'reject',
        'SBX-WAITLIST-PROMOTED': 'accept',
      }), 0);
    });

    // Synchronously inside the handler: nothing asynchronous may come before the popup.
    const pending = page.instance.onBook({ currentTarget: { dataset: { id: 11 } } });
    expect(wx.requestSubscribeMessage).toHaveBeenCalledTimes(1);
    expect(wx.requestSubscribeMessage.mock.calls[0][0].tmplIds).toEqual(fx.subscriptions.scenes.booking);
    await pending;
    await flush();

    expect(order).toEqual(['popup', 'report', 'book']);
    expect(backend.callsTo('POST', '/member/subscriptions')[0].data).toEqual({
      results: { 'SBX-BOOKING-CONFIRMED': 'accept', 'SBX-BOOKING-REMINDER': 'reject', 'SBX-WAITLIST-PROMOTED': 'accept' },
    });
    const post = backend.callsTo('POST', '/member/bookings')[0];
    expect(post.data).toEqual({ slot_id: 11 });
    expect(post.header['Idempotency-Key']).toMatch(/^mp-/);
    expect(wx.showModal.mock.calls[0][0].title).toBe('预约成功');
    expect(wx.showModal.mock.calls[0][0].content).toContain('B501XY');
    expect(backend.callsTo('GET', '/member/events/1')).toHaveLength(2);
  });

  test('the tap on the button drives the same flow; a declined popup still books', async () => {
    const { page, backend } = await open({ 'POST /member/bookings': { status: 201, data: booked } });
    wx.requestSubscribeMessage = jest.fn((o) => setTimeout(() => o.fail({ errMsg: 'requestSubscribeMessage:fail cancel' }), 0));
    await tap(page, '#book-11');
    await flush();
    expect(wx.requestSubscribeMessage).toHaveBeenCalledTimes(1);
    expect(backend.callsTo('POST', '/member/subscriptions')).toHaveLength(0);
    expect(backend.callsTo('POST', '/member/bookings')).toHaveLength(1);
  });

  test('my booking shows its code and can be cancelled', async () => {
    const mine = detail({ my_booking: { id: 501, code: 'B501XY', slot_id: 11, status: 'booked' } });
    const { page, backend } = await open({
      'GET /member/events/1': { status: 200, data: mine },
      'POST /member/bookings/501/cancel': { status: 200, data: { booking: fx.booking(501, { status: 'cancelled' }) } },
    });
    expect(text(page, '#slot-11')).toContain('已预约 · 到店出示预约码 B501XY');
    expect(text(page, '#slot-12')).toContain('每场限约一次');
    await tap(page, '#cancel-11');
    await flush();
    expect(wx.showModal.mock.calls[0][0].title).toBe('取消这次预约？');
    expect(backend.callsTo('POST', '/member/bookings/501/cancel')).toHaveLength(1);
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '已为您取消预约' }));
  });

  test('a slot that filled up meanwhile offers the waitlist', async () => {
    const { page, backend } = await open({
      'POST /member/bookings': { status: 409, data: envelope('slot_full', '该时段已约满，可加入候补') },
      'POST /member/waitlist': { status: 201, data: { entry: { id: 9, position: 3 } } },
    });
    await tap(page, '#book-11');
    await flush();
    expect(wx.showModal.mock.calls[0][0]).toMatchObject({ title: '这个时段刚刚约满', confirmText: '加入候补' });
    await flush();
    expect(backend.callsTo('POST', '/member/waitlist')[0].data).toEqual({ slot_id: 11 });
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '已加入候补，当前第 3 位' }));
  });

  test('joining the waitlist of a full slot, and leaving it', async () => {
    const { page, backend } = await open({
      'POST /member/waitlist': { status: 201, data: { entry: { id: 9, position: 1 } } },
      'POST /member/waitlist/9/cancel': { status: 200, data: { entry: { id: 9 } } },
    });
    await tap(page, '#waitlist-12');
    await flush();
    expect(wx.requestSubscribeMessage).toHaveBeenCalled();
    expect(backend.callsTo('POST', '/member/waitlist')[0].data).toEqual({ slot_id: 12 });

    backend.set('GET /member/events/1', { status: 200, data: detail({}, [fx.slot(12, { left: 0, full: true, my_waitlist: { id: 9, position: 1 } })]) });
    await page.instance.load({ quiet: true });
    await flush();
    expect(text(page, '#slot-12')).toContain('您在候补第 1 位');
    await tap(page, '#leave-12');
    await flush();
    expect(backend.callsTo('POST', '/member/waitlist/9/cancel')).toHaveLength(1);
  });

  test('not open for me yet: a countdown, no booking button, and the server’s opening time if I try', async () => {
    const later = detail({ my_opens_at: '2026-11-25T02:00:00Z', open_now: false });
    const { page } = await open({ 'GET /member/events/1': { status: 200, data: later } });
    expect(text(page, '#countdown')).toBe('距您的预约开放还有 1天 00:00:00');
    expect($(page, '#book-11')).toBeUndefined();
    expect(text(page, '#slot-11')).toContain('未开放');

    mockBackend({ 'POST /member/bookings': { status: 409, data: envelope('not_open_yet', '尚未开放预约', { opens_at: '2026-11-25T02:00:00Z' }) } });
    await page.instance.book(11);
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '将于 11月25日 10:00 为您开放预约' }));
  });

  test('no slots, and an error with retry', async () => {
    const { page, backend } = await open({ 'GET /member/events/1': { status: 200, data: detail({}, []) } });
    expect(allText(page)).toContain('这场会员日暂时还没有时段');

    backend.set('GET /member/events/1', { status: 404, data: envelope('not_found', '会员日不存在') });
    const failed = await openPage(DETAIL, { id: '1' });
    failed.instance.stopTicking();
    expect(failed.data.status).toBe('error');
    expect(allText(failed)).toContain('会员日不存在');
    backend.set('GET /member/events/1', { status: 200, data: detail() });
    await retry(failed);
    expect(failed.data.status).toBe('ready');
  });
});
