const { mockBackend, envelope } = require('../helpers/mock-backend');
const { openPage, text, flush, $, retry, allText } = require('../helpers/page');
const fx = require('../helpers/fixtures');

describe('积分明细', () => {
  const PAGE = 'pages/points/history';

  test('earn, spend and expire are clearly told apart', async () => {
    mockBackend({
      'GET /member/points/entries': {
        status: 200,
        data: {
          items: [
            fx.entry(3, 'expire', -80, { reason: '积分到期', balance_after: 920 }),
            fx.entry(2, 'spend', -500, { reason: '兑换 100元代金券', balance_after: 1000 }),
            fx.entry(1, 'earn', 1500, { reason: '静安店消费', balance_after: 1500 }),
          ],
          next_cursor: null,
        },
      },
    });
    const page = await openPage(PAGE);
    expect(text(page, '#entry-1')).toMatch(/^获得静安店消费.*余额 1,500\+1,500$/);
    expect(text(page, '#entry-2')).toMatch(/^使用兑换 100元代金券.*-500$/);
    expect(text(page, '#entry-3')).toMatch(/^过期积分到期.*-80$/);
    expect($(page, '#entry-1').dom.className).toContain('entry-earn');
    expect($(page, '#entry-2').dom.className).toContain('entry-spend');
    expect($(page, '#entry-3').dom.className).toContain('entry-expire');
    expect(text(page, '#list-end')).toBe('没有更多记录了');
  });

  test('scrolling to the bottom loads the next page by cursor until the end', async () => {
    const backend = mockBackend({
      'GET /member/points/entries': (call) => (call.query.cursor === '41'
        ? { status: 200, data: { items: [fx.entry(40, 'earn', 10)], next_cursor: null } }
        : { status: 200, data: { items: [fx.entry(42, 'earn', 10), fx.entry(41, 'earn', 10)], next_cursor: 41 } }),
    });
    const page = await openPage(PAGE);
    expect(page.data.entries).toHaveLength(2);
    expect($(page, '#list-end')).toBeUndefined();
    page.instance.onReachBottom();
    await flush();
    expect(page.data.entries.map((e) => e.id)).toEqual([42, 41, 40]);
    expect(text(page, '#list-end')).toBe('没有更多记录了');
    page.instance.onReachBottom();
    await flush();
    expect(backend.callsTo('GET', '/member/points/entries').map((c) => c.query.cursor)).toEqual([undefined, '41']);
  });

  test('a failed next page offers a retry and keeps what is shown', async () => {
    let fail = true;
    mockBackend({
      'GET /member/points/entries': (call) => {
        if (!call.query.cursor) return { status: 200, data: { items: [fx.entry(2, 'earn', 10)], next_cursor: 2 } };
        if (fail) return { fail: 'request:fail' };
        return { status: 200, data: { items: [fx.entry(1, 'earn', 10)], next_cursor: null } };
      },
    });
    const page = await openPage(PAGE);
    page.instance.onReachBottom();
    await flush();
    expect(text(page, '#more-retry')).toContain('点此重试');
    fail = false;
    $(page, '#more-retry').dispatchEvent('tap');
    await flush();
    expect(page.data.entries).toHaveLength(2);
  });

  test('empty', async () => {
    mockBackend({ 'GET /member/points/entries': { status: 200, data: { items: [], next_cursor: null } } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('empty');
    expect(allText(page)).toContain('还没有积分记录');
  });

  test('error and retry', async () => {
    const backend = mockBackend({ 'GET /member/points/entries': { fail: 'request:fail' } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('error');
    expect(allText(page)).toContain('网络不太顺畅');
    backend.set('GET /member/points/entries', { status: 200, data: { items: [fx.entry(1, 'earn', 5)], next_cursor: null } });
    await retry(page);
    expect(page.data.status).toBe('ready');
  });
});

describe('积分规则', () => {
  const PAGE = 'pages/points/rules';
  const rules = {
    points_per_yuan: 1,
    earning: '每实付 1 元积 1 分（不足 1 元的部分不积分），再乘以会员等级的积分倍率',
    bonuses: [{ kind: 'birthday_month', multiplier_pct: 200, days: [], description: '生日当月消费，积分 2 倍' }],
    bonus_rule: '生日月与会员日加倍不叠加，取较高的一项',
    checkin_points: 10,
    checkin: '每天签到一次，得 10 分（按自然日计）',
    referral_points: 500,
    referral_monthly_cap: 10,
    referral: '推荐的好友首次到店消费后，您立即获得 500 分；每月最多 10 位好友计入',
    points_validity_months: 12,
    expiry: '每笔积分自获得之日起 12 个月内有效，到期日当天仍可使用；到期前 30 天会提醒您',
    spending: '使用积分时，先用最早到期的积分',
    refunds: '消费退款时，相应积分一并退回',
    tier_validity_months: 12,
    tiers: [Object.assign({ description: '' }, fx.tiers.normal), Object.assign({ description: '' }, fx.tiers.gold)],
    tier_rules: ['消费达到更高等级门槛时立即升级'],
  };

  test('renders what GET /rules says, without logging in', async () => {
    const backend = mockBackend({ 'GET /member/rules': { status: 200, data: rules } });
    const page = await openPage(PAGE);
    expect(text(page, '#earning')).toContain(rules.earning);
    expect(text(page, '#earning')).toContain(rules.checkin);
    expect(text(page, '#bonuses')).toContain('生日当月消费，积分 2 倍');
    expect(text(page, '#using')).toContain(rules.expiry);
    expect(text(page, '#tier-normal')).toContain('开通即享');
    expect(text(page, '#tier-gold')).toContain('近 12 个月消费满 ¥30,000');
    expect(text(page, '#tier-gold')).toContain('会员日提前24小时预约');
    expect(text(page, '#tiers')).toContain('· 消费达到更高等级门槛时立即升级');
    expect(backend.calls[0].header.Authorization).toBeUndefined();
    expect(wx.login).not.toHaveBeenCalled();
  });

  test('empty', async () => {
    mockBackend({ 'GET /member/rules': { status: 200, data: { earning: '', bonuses: [], tiers: [], tier_rules: [] } } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('empty');
    expect(allText(page)).toContain('积分规则正在更新');
  });

  test('error and retry', async () => {
    const backend = mockBackend({ 'GET /member/rules': { status: 503, data: envelope('unavailable', '暂不可用') } });
    const page = await openPage(PAGE);
    expect(page.data.status).toBe('error');
    backend.set('GET /member/rules', { status: 200, data: rules });
    await retry(page);
    expect(page.data.status).toBe('ready');
  });
});
