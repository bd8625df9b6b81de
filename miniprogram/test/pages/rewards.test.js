const { mockBackend, envelope } = require('../helpers/mock-backend');
const { openPage, text, tap, flush, $, retry, allText } = require('../helpers/page');
const fx = require('../helpers/fixtures');
const store = require('../../miniprogram/utils/store');

const PAGE = 'pages/rewards/index';

function catalogue(balance = 1200) {
  return {
    points_balance: balance,
    rewards: [
      fx.reward(1),
      fx.reward(4, { name: '补水面膜礼盒', kind: 'product', points_price: 1500, face_value_fen: null, eligible: false, ineligible_reason: 'insufficient_points' }),
      fx.reward(6, { name: '热玛吉眼周体验', kind: 'service', points_price: 12000, min_tier_code: 'gold', min_tier_name: '黄金会员', eligible: false, ineligible_reason: 'tier_too_low' }),
      fx.reward(7, { name: '光子嫩肤体验', stock_left: 0, eligible: false, ineligible_reason: 'sold_out' }),
      fx.reward(8, { name: '300元代金券', per_member_limit: 1, redeemed: 1, eligible: false, ineligible_reason: 'limit_reached' }),
    ],
  };
}

const redeemed = {
  voucher: fx.voucher(31, { code: 'K7Q2M9X4', title: '100元代金券', expires_on: '2027-02-22' }),
  points_balance: 700,
};

describe('积分兑换', () => {
  test('lists rewards with price, stock and whether I can redeem, and why not', async () => {
    mockBackend({ 'GET /member/rewards': { status: 200, data: catalogue() } });
    const page = await openPage(PAGE);
    expect(text(page, '#balance')).toBe('1,200');
    const first = text(page, '#reward-1');
    expect(first).toContain('100元代金券');
    expect(first).toContain('剩 200 份');
    expect(first).toContain('每人限兑 5 份');
    expect(first).toContain('500 积分');
    expect($(page, '#redeem-1')).toBeTruthy();
    expect(text(page, '#reason-4')).toBe('还差 300 积分');
    expect(text(page, '#reason-6')).toBe('黄金会员及以上可兑');
    expect(text(page, '#reason-7')).toBe('已兑完');
    expect(text(page, '#reward-7')).toContain('已兑完');
    expect(text(page, '#reason-8')).toBe('已达兑换上限');
    expect($(page, '#redeem-4')).toBeUndefined();
  });

  test('redeeming asks for confirmation, sends an Idempotency-Key and updates the card balance at once', async () => {
    const backend = mockBackend({
      'GET /member/rewards': { status: 200, data: catalogue() },
      'POST /member/redemptions': { status: 201, data: redeemed },
    });
    store.set('card', fx.card({ points_balance: 1200 }));
    const page = await openPage(PAGE);
    await tap(page, '#redeem-1');
    expect(wx.showModal.mock.calls[0][0]).toMatchObject({ title: '确认兑换', confirmText: '确认兑换' });
    expect(wx.showModal.mock.calls[0][0].content).toContain('使用 500 积分兑换「100元代金券」');
    await flush();
    const post = backend.callsTo('POST', '/member/redemptions');
    expect(post).toHaveLength(1);
    expect(post[0].data).toEqual({ reward_id: 1 });
    expect(post[0].header['Idempotency-Key']).toMatch(/^mp-/);
    expect(store.get('card').points_balance).toBe(700);
    const success = wx.showModal.mock.calls[1][0];
    expect(success.title).toBe('兑换成功');
    expect(success.content).toContain('K7Q2M9X4');
    expect(backend.callsTo('GET', '/member/rewards')).toHaveLength(2);
  });

  test('cancelling the confirmation redeems nothing', async () => {
    const backend = mockBackend({ 'GET /member/rewards': { status: 200, data: catalogue() } });
    wx.showModal = jest.fn((o) => setTimeout(() => o.success({ confirm: false, cancel: true }), 0));
    const page = await openPage(PAGE);
    await tap(page, '#redeem-1');
    expect(backend.callsTo('POST', '/member/redemptions')).toHaveLength(0);
  });

  test('a refusal is explained in plain words', async () => {
    mockBackend({
      'GET /member/rewards': { status: 200, data: catalogue() },
      'POST /member/redemptions': { status: 409, data: envelope('sold_out', '该礼品已兑完') },
    });
    const page = await openPage(PAGE);
    await tap(page, '#redeem-1');
    await flush();
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '这份礼品已经兑完了，看看其他礼品吧' }));
  });

  test('a lost answer keeps the Idempotency-Key, so tapping again cannot charge twice', async () => {
    let attempt = 0;
    const backend = mockBackend({
      'GET /member/rewards': { status: 200, data: catalogue() },
      'POST /member/redemptions': () => {
        attempt += 1;
        return attempt === 1 ? { fail: 'request:fail timeout' } : { status: 201, data: redeemed };
      },
    });
    const page = await openPage(PAGE);
    await tap(page, '#redeem-1');
    await flush();
    await tap(page, '#redeem-1');
    await flush();
    const keys = backend.callsTo('POST', '/member/redemptions').map((c) => c.header['Idempotency-Key']);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
  });

  test('empty catalogue', async () => {
    mockBackend({ 'GET /member/rewards': { status: 200, data: { points_balance: 10, rewards: [] } } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('empty');
    expect(allText(page)).toContain('礼品正在上新');
  });

  test('error and retry; not a member yet', async () => {
    const backend = mockBackend({ 'GET /member/rewards': { status: 500, data: {} } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('error');
    expect(allText(page)).toContain('服务器开小差了');
    backend.set('GET /member/rewards', { status: 200, data: catalogue() });
    await retry(page);
    expect(page.data.status).toBe('ready');

    mockBackend({ 'GET /member/rewards': { status: 404, data: envelope('not_member', '您还不是会员') } });
    const other = await openPage(PAGE);
    expect(text(other, '#join-invite')).toContain('开通会员后即可用积分兑换');
  });
});

describe('我的券', () => {
  const VPAGE = 'pages/vouchers/index';

  test('unused vouchers show their code as a QR for the desk', async () => {
    const backend = mockBackend({
      'GET /member/vouchers': { status: 200, data: { items: [fx.voucher(31, { code: 'K7Q2M9X4' })], next_cursor: null } },
    });
    const page = await openPage(VPAGE);
    expect(backend.callsTo('GET', '/member/vouchers')[0].query.status).toBe('unused');
    expect(text(page, '#voucher-31')).toContain('有效期至 2027年2月18日');
    expect($(page, '#qr-31')).toBeUndefined();
    await tap(page, '#show-31');
    expect($(page, '#qr-31 >>> .qrcode-stub').dom.getAttribute('data-value')).toBe('K7Q2M9X4');
    expect(text(page, '#qr-31')).toContain('K7Q2M9X4');
  });

  test('tabs load vouchers by status', async () => {
    const backend = mockBackend({
      'GET /member/vouchers': (call) => ({ status: 200, data: { items: call.query.status === 'used' ? [fx.voucher(2, { status: 'used', used_at: '2026-11-21T03:00:00Z' })] : [], next_cursor: null } }),
    });
    const page = await openPage(VPAGE);
    expect(page.data.status).toBe('empty');
    expect(allText(page)).toContain('暂时没有可用的券');
    await tap(page, '#tab-used');
    expect(backend.callsTo('GET', '/member/vouchers').map((c) => c.query.status)).toEqual(['unused', 'used']);
    expect(text(page, '#voucher-2')).toContain('已于 11月21日 11:00 使用');
    expect($(page, '#show-2')).toBeUndefined();
  });

  test('cancelling a redeemed voucher returns its points to the card', async () => {
    store.set('card', fx.card({ points_balance: 700 }));
    const backend = mockBackend({
      'GET /member/vouchers': { status: 200, data: { items: [fx.voucher(31)], next_cursor: null } },
      'POST /member/vouchers/31/cancel': { status: 200, data: { voucher: fx.voucher(31, { status: 'cancelled' }), points_returned: 500, points_balance: 1200 } },
    });
    const page = await openPage(VPAGE);
    await tap(page, '#cancel-31');
    await flush();
    expect(backend.callsTo('POST', '/member/vouchers/31/cancel')).toHaveLength(1);
    expect(store.get('card').points_balance).toBe(1200);
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '已取消，500 积分已退回' }));
  });

  test('error and retry', async () => {
    const backend = mockBackend({ 'GET /member/vouchers': { fail: 'request:fail' } });
    const page = await openPage(VPAGE);
    expect(page.data.status).toBe('error');
    backend.set('GET /member/vouchers', { status: 200, data: { items: [fx.voucher(1)], next_cursor: null } });
    await retry(page);
    expect(page.data.status).toBe('ready');
  });
});
