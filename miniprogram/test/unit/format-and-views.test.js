const fmt = require('../../miniprogram/utils/format');
const { cardView, progressOf } = require('../../miniprogram/pages/index/card-view');
const { eventView, stateOf } = require('../../miniprogram/pages/events/event-view');
const { slotView } = require('../../miniprogram/pages/event/slot-view');
const { entryView } = require('../../miniprogram/pages/points/entry-view');
const session = require('../../miniprogram/utils/session');
const store = require('../../miniprogram/utils/store');
const fx = require('../helpers/fixtures');

describe('format', () => {
  test('money in yuan with separators, cents only when present', () => {
    expect(fmt.yuan(3000000)).toBe('¥30,000');
    expect(fmt.yuan(12345)).toBe('¥123.45');
    expect(fmt.yuan(-500)).toBe('-¥5');
    expect(fmt.yuan(0)).toBe('¥0');
  });

  test('points with sign', () => {
    expect(fmt.points(1234567)).toBe('1,234,567');
    expect(fmt.signedPoints(500)).toBe('+500');
    expect(fmt.signedPoints(-1200)).toBe('-1,200');
    expect(fmt.signedPoints(0)).toBe('0');
  });

  test('times are the store’s (China) times whatever the phone’s zone', () => {
    expect(fmt.datetime('2026-12-03T18:30:00Z')).toBe('12月4日 02:30');
    expect(fmt.time('2026-12-04T02:00:00Z')).toBe('10:00');
    expect(fmt.chinaDate('2026-11-23T19:36:00Z')).toBe('2026-11-24');
    expect(fmt.date('2026-12-04')).toBe('2026年12月4日');
    expect(fmt.shortDate('2026-12-04')).toBe('12月4日 周五');
  });

  test('countdown and days between', () => {
    expect(fmt.countdown(3723000)).toBe('01:02:03');
    expect(fmt.countdown(2 * 86400000 + 5000)).toBe('2天 00:00:05');
    expect(fmt.countdown(-5)).toBe('00:00:00');
    expect(fmt.daysBetween('2026-11-24', '2026-12-04')).toBe(10);
    expect(fmt.daysBetween('2026-12-31', '2027-01-01')).toBe(1);
  });
});

describe('card view', () => {
  test('progress is spend over the next threshold, capped', () => {
    expect(progressOf(fx.card()).percent).toBe(60);
    const reached = fx.card({ spend_12m_fen: 9000000, next_tier: { code: 'platinum', name: '铂金会员', threshold_fen: 8000000, spend_needed_fen: 0 } });
    expect(progressOf(reached)).toMatchObject({ percent: 100, text: '已达到铂金会员标准，升级即将生效' });
  });

  test('points expiring today say so', () => {
    const v = cardView(fx.card({ expiring_soon: [{ expires_on: '2026-11-24', points: 50 }], expiring_soon_total: 50 }));
    expect(v.expiring[0]).toEqual({ points: '50', date: '2026年11月24日', daysLeft: '今天到期' });
  });
});

describe('event and slot views', () => {
  const now = Date.parse('2026-11-24T02:00:00Z');

  test('an event counts down to my own opening time', () => {
    const ev = fx.event(1, { my_opens_at: '2026-11-24T03:01:01Z', open_now: false });
    expect(stateOf(ev, now)).toBe('countdown');
    expect(eventView(ev, now).countdown).toBe('01:01:01');
  });

  test('open, closed, ineligible and booked', () => {
    expect(stateOf(fx.event(1), now)).toBe('open');
    expect(stateOf(fx.event(1, { closes_at: '2026-11-24T01:00:00Z', open_now: false }), now)).toBe('closed');
    expect(stateOf(fx.event(1, { eligible: false, min_tier_name: '黄金会员' }), now)).toBe('ineligible');
    expect(stateOf(fx.event(1, { my_booking: { id: 5, code: 'B5', slot_id: 11, status: 'booked' } }), now)).toBe('booked');
  });

  test('slot actions', () => {
    const ev = fx.event(1);
    expect(slotView(fx.slot(11), ev, now).action).toBe('book');
    expect(slotView(fx.slot(11, { left: 0, booked: 6, full: true }), ev, now).action).toBe('waitlist');
    expect(slotView(fx.slot(11, { left: 0, full: true, my_waitlist: { id: 9, position: 2 } }), ev, now)).toMatchObject({ action: 'leave_waitlist', waitlistText: '您在候补第 2 位' });
    const booked = fx.event(1, { my_booking: { id: 5, code: 'B5', slot_id: 11, status: 'booked' } });
    expect(slotView(fx.slot(11), booked, now)).toMatchObject({ action: 'cancel', bookingId: 5, bookingCode: 'B5' });
    expect(slotView(fx.slot(12), booked, now)).toMatchObject({ action: 'none', note: '每场限约一次' });
    const later = fx.event(1, { my_opens_at: '2026-11-25T02:00:00Z', open_now: false });
    expect(slotView(fx.slot(11), later, now)).toMatchObject({ action: 'none', note: '未开放' });
    const gold = fx.event(1, { eligible: false, min_tier_name: '黄金会员' });
    expect(slotView(fx.slot(11), gold, now)).toMatchObject({ action: 'none', note: '黄金会员及以上可约' });
  });
});

describe('ledger entries', () => {
  test('earn, spend and expire are told apart by label, colour class and sign', () => {
    expect(entryView(fx.entry(1, 'earn', 300))).toMatchObject({ kindLabel: '获得', cls: 'earn', delta: '+300' });
    expect(entryView(fx.entry(2, 'spend', -500))).toMatchObject({ kindLabel: '使用', cls: 'spend', delta: '-500' });
    expect(entryView(fx.entry(3, 'expire', -80))).toMatchObject({ kindLabel: '过期', cls: 'expire', delta: '-80' });
    expect(entryView(fx.entry(4, 'earn', 10, { reason: '', source: 'checkin' })).title).toBe('每日签到');
  });
});

describe('session', () => {
  test('a referral code comes from ?ref= or from the mini-program code scene', () => {
    expect(session.captureReferral({ ref: 'AbC234' })).toBe('AbC234');
    expect(session.captureReferral({ scene: encodeURIComponent('r=Zx9Kp2Qm') })).toBe('Zx9Kp2Qm');
    expect(session.referralCode()).toBe('Zx9Kp2Qm');
    expect(session.captureReferral({})).toBe('');
  });

  test('the joining step follows what is known', () => {
    expect(session.step({})).toBe('consent');
    expect(session.step({ consented: true })).toBe('phone');
    expect(session.step({ consented: true, customerLinked: true })).toBe('join');
    expect(session.step({ isMember: true })).toBe('member');
    // Linked by the store but never consented: consent first.
    expect(session.step({ customerLinked: true })).toBe('consent');
  });

  test('the account view replaces what this phone remembers, field by field', () => {
    session.writeAccount({ consented: true, marketing: true, customerLinked: true, isMember: true, phoneMasked: '138****1234', birthday: '1990-08-15' });
    const acc = session.fromServer(fx.account({ consent: null, phone_masked: null, customer_linked: false, is_member: false, referral_code: 'Zz', deletion_requested_at: null }));
    expect(acc).toMatchObject({ consented: false, marketing: false, sensitiveHealth: false, customerLinked: false, isMember: false, phoneMasked: '', referralCode: 'Zz', deletionRequestedAt: '' });
    expect(session.step()).toBe('consent');
    // What the account view does not cover stays.
    expect(session.account().birthday).toBe('1990-08-15');

    session.fromServer(fx.account({ is_member: false, deletion_requested_at: '2026-11-24T03:00:00Z' }));
    expect(session.account()).toMatchObject({ consented: true, policyVersion: '2026-11', marketing: true, sensitiveHealth: false, phoneMasked: '138****1234', deletionRequestedAt: '2026-11-24T03:00:00Z' });
    expect(session.step()).toBe('join');
    expect(wx.getStorageSync(session.ACCOUNT_KEY)).toMatchObject({ customerLinked: true, isMember: false });
  });
});

describe('store', () => {
  test('listeners hear changes until they leave; patch needs a value', () => {
    const seen = [];
    const off = store.on('card', (c) => seen.push(c.points_balance));
    store.patch('card', { points_balance: 1 });
    store.set('card', { points_balance: 5 });
    store.patch('card', { points_balance: 6 });
    off();
    store.patch('card', { points_balance: 7 });
    expect(seen).toEqual([5, 6]);
    expect(store.get('card').points_balance).toBe(7);
  });
});
