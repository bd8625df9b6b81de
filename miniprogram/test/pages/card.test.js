const { mockBackend, envelope } = require('../helpers/mock-backend');
const { openPage, text, tap, flush, $, retry } = require('../helpers/page');
const fx = require('../helpers/fixtures');
const store = require('../../miniprogram/utils/store');

const PAGE = 'pages/index/index';

describe('会员卡', () => {
  test('shows tier, member number, balance, progress to the next tier and validity', async () => {
    mockBackend({ 'GET /member/me': { status: 200, data: fx.card() } });
    const page = await openPage(PAGE);
    expect(text(page, '#tier-badge')).toBe('黄金会员');
    expect(text(page, '#member-no')).toBe('NO. MH00000007');
    expect(text(page, '#balance')).toBe('12,680');
    expect(text(page, '#validity')).toBe('等级有效期至 2027年5月31日');
    expect(text(page, '#progress-text')).toBe('近 12 个月再消费 ¥32,000 即可升级为铂金会员');
    expect(page.data.card.progress.percent).toBe(60);
  });

  test('a member with points expiring in 10 days sees the amount and the date', async () => {
    mockBackend({ 'GET /member/me': { status: 200, data: fx.card() } });
    const page = await openPage(PAGE);
    const expiring = text(page, '#expiring');
    expect(expiring).toContain('共 400 分');
    expect(expiring).toContain('320 分');
    expect(expiring).toContain('2026年12月4日 到期 · 10 天后到期');
    expect(expiring).toContain('80 分');
    expect(expiring).toContain('2026年12月20日 到期');
  });

  test('no expiring block when nothing expires; top tier and entry tier wording', async () => {
    mockBackend({
      'GET /member/me': {
        status: 200,
        data: fx.card({ tier: fx.tiers.diamond, next_tier: null, tier_valid_until: null, expiring_soon: [], expiring_soon_total: 0 }),
      },
    });
    const page = await openPage(PAGE);
    expect($(page, '#expiring')).toBeUndefined();
    expect(text(page, '#progress-text')).toBe('您已是最高等级会员，感谢一路相伴');
    expect(text(page, '#validity')).toBe('等级长期有效');
  });

  test('before joining it invites the member to join instead of failing', async () => {
    mockBackend({ 'GET /member/me': { status: 404, data: envelope('not_member', '您还不是会员，加入后即可查看会员卡') } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('not_member');
    expect(text(page, '#join-invite')).toContain('开通会员');
    await tap(page, '#go-join');
    expect(wx.switchTab).toHaveBeenCalledWith({ url: '/pages/mine/index' });
  });

  test('shows an error with a retry that loads again', async () => {
    const backend = mockBackend({ 'GET /member/me': { status: 500, data: envelope('internal_error', '服务器开小差了，请稍后再试') } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('error');
    expect(page.dom.textContent).toContain('服务器开小差了，请稍后再试');
    backend.set('GET /member/me', { status: 200, data: fx.card() });
    await retry(page);
    expect(page.data.status).toBe('ready');
    expect(text(page, '#balance')).toBe('12,680');
  });

  test('daily check-in adds the points to the balance and turns the button off', async () => {
    let checkedIn = false;
    const backend = mockBackend({
      'GET /member/me': () => ({ status: 200, data: fx.card(checkedIn ? { checked_in_today: true, points_balance: 12690 } : {}) }),
      'POST /member/checkins': () => {
        checkedIn = true;
        return { status: 201, data: { date: '2026-11-24', points: 10, points_balance: 12690 } };
      },
    });
    const page = await openPage(PAGE);
    await tap(page, '#checkin');
    expect(backend.callsTo('POST', '/member/checkins')).toHaveLength(1);
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '签到成功 +10 积分' }));
    expect(page.data.card.checkedIn).toBe(true);
    expect(text(page, '#balance')).toBe('12,690');
    expect(text(page, '#checkin')).toBe('已签到');
  });

  test('a failed check-in explains itself and leaves the balance alone', async () => {
    mockBackend({
      'GET /member/me': { status: 200, data: fx.card() },
      'POST /member/checkins': { status: 409, data: envelope('already_checked_in', '今天已经签到过了，明天再来吧') },
    });
    const page = await openPage(PAGE);
    await tap(page, '#checkin');
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '今天已经签到过了，明天再来吧' }));
    expect(text(page, '#balance')).toBe('12,680');
  });

  test('checked in already: the button says so and a second tap sends nothing', async () => {
    const backend = mockBackend({ 'GET /member/me': { status: 200, data: fx.card({ checked_in_today: true }) } });
    const page = await openPage(PAGE);
    expect(text(page, '#checkin')).toBe('已签到');
    await tap(page, '#checkin');
    expect(backend.callsTo('POST', '/member/checkins')).toHaveLength(0);
  });

  test('a redemption elsewhere shows the new balance at once, and the tab re-reads the card when shown', async () => {
    const backend = mockBackend({ 'GET /member/me': { status: 200, data: fx.card() } });
    const page = await openPage(PAGE);
    store.patch('card', { points_balance: 12180 });
    await flush();
    expect(text(page, '#balance')).toBe('12,180');
    backend.set('GET /member/me', { status: 200, data: fx.card({ points_balance: 12180, expiring_soon: [], expiring_soon_total: 0 }) });
    page.instance.onShow();
    await flush();
    expect(backend.callsTo('GET', '/member/me')).toHaveLength(2);
    expect($(page, '#expiring')).toBeUndefined();
  });

  test('entries lead to rewards, vouchers, history and rules', async () => {
    mockBackend({ 'GET /member/me': { status: 200, data: fx.card() } });
    const page = await openPage(PAGE);
    for (const [id, url] of [['#go-rewards', '/pages/rewards/index'], ['#go-vouchers', '/pages/vouchers/index'], ['#go-history', '/pages/points/history'], ['#go-rules', '/pages/points/rules']]) {
      await (async () => {
        $(page, id).dispatchEvent('click');
        await flush();
      })();
      expect(wx.navigateTo).toHaveBeenLastCalledWith({ url });
    }
  });

  test('keeps a referral code from the share card for joining later', async () => {
    mockBackend({ 'GET /member/me': { status: 404, data: envelope('not_member', 'x') } });
    await openPage(PAGE, { ref: 'AbC234' });
    expect(wx.getStorageSync('memberhub.referral')).toBe('AbC234');
  });

  test('card artwork comes from the manifest; one that fails to load leaves the plain card', async () => {
    const backend = mockBackend({
      'GET /static/mp/manifest.json': { status: 200, data: fx.manifest },
      'GET /member/me': { status: 200, data: fx.card() },
    });
    const page = await openPage(PAGE);
    expect(backend.callsTo('GET', '/static/mp/manifest.json')).toHaveLength(1);
    expect(page.data.card.artwork).toBe('http://127.0.0.1:8080/static/mp/card-gold.7d793037.png');
    expect($(page, '.member-card-art')).toBeTruthy();
    await (async () => {
      $(page, '.member-card-art').dispatchEvent('error');
      await flush();
    })();
    expect($(page, '.member-card-art')).toBeUndefined();
    expect(text(page, '#balance')).toBe('12,680');
  });

  test('without the manifest the card shows its plain colour, and the artwork follows when it comes', async () => {
    const backend = mockBackend({
      'GET /static/mp/manifest.json': { status: 503, data: {} },
      'GET /member/me': { status: 200, data: fx.card({ tier: fx.tiers.platinum }) },
    });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('ready');
    expect(page.data.card.artwork).toBe('');
    expect($(page, '.member-card-art')).toBeUndefined();
    expect($(page, '#member-card').dom.className).toContain('tier-platinum');
    expect(text(page, '#balance')).toBe('12,680');
    // Another page (or the next launch) gets the manifest; this card picks it up.
    backend.set('GET /static/mp/manifest.json', { status: 200, data: fx.manifest });
    await require('../../miniprogram/utils/assets').load();
    await flush();
    expect(page.data.card.artwork).toBe('http://127.0.0.1:8080/static/mp/card-platinum.6f8f5771.png');
    expect($(page, '.member-card-art')).toBeTruthy();
  });
});
