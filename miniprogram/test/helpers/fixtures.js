// Response bodies shaped like the backend's (GET /api-docs/openapi.json), for page tests.
const tiers = {
  normal: { code: 'normal', name: '普通会员', rank: 0, threshold_fen: 0, discount_pct: 95, multiplier_pct: 100, booking_lead_hours: 0, benefits: ['消费享95折', '消费1元积1分', '生日月积分双倍'] },
  gold: { code: 'gold', name: '黄金会员', rank: 1, threshold_fen: 3000000, discount_pct: 90, multiplier_pct: 120, booking_lead_hours: 24, benefits: ['消费享9折', '积分1.2倍', '会员日提前24小时预约'] },
  platinum: { code: 'platinum', name: '铂金会员', rank: 2, threshold_fen: 8000000, discount_pct: 88, multiplier_pct: 150, booking_lead_hours: 48, benefits: ['消费享88折'] },
  diamond: { code: 'diamond', name: '星钻会员', rank: 3, threshold_fen: 20000000, discount_pct: 85, multiplier_pct: 200, booking_lead_hours: 72, benefits: ['消费享85折'] },
};

function card(over = {}) {
  return Object.assign({
    member_id: 7,
    member_no: 'MH00000007',
    name: '叶怡',
    birthday: null,
    joined_at: '2025-03-01T02:00:00Z',
    tier: tiers.gold,
    tier_valid_until: '2027-05-31',
    tier_is_manual: false,
    next_tier: { code: 'platinum', name: '铂金会员', threshold_fen: 8000000, spend_needed_fen: 3200000 },
    spend_12m_fen: 4800000,
    points_balance: 12680,
    expiring_soon: [{ expires_on: '2026-12-04', points: 320 }, { expires_on: '2026-12-20', points: 80 }],
    expiring_soon_total: 400,
    checked_in_today: false,
    today: '2026-11-24',
  }, over);
}

function entry(id, kind, delta, over = {}) {
  const sources = { earn: 'consumption', spend: 'redemption', expire: 'expiry', reverse: 'refund', adjust: 'adjust' };
  return Object.assign({
    id, kind, delta, balance_after: 1000, source: sources[kind], reason: '说明', created_at: '2026-11-20T06:30:00Z',
  }, over);
}

function reward(id, over = {}) {
  return Object.assign({
    id,
    name: '100元代金券',
    kind: 'cash_voucher',
    description: '单笔消费满500元可用，全部门店通用',
    points_price: 500,
    stock_left: 200,
    per_member_limit: 5,
    redeemed: 0,
    min_tier_code: null,
    min_tier_name: null,
    starts_at: null,
    ends_at: null,
    voucher_valid_days: 90,
    face_value_fen: 10000,
    store_id: null,
    eligible: true,
    ineligible_reason: null,
  }, over);
}

function voucher(id, over = {}) {
  return Object.assign({
    id,
    code: `V${id}ABCD2345`,
    customer_id: 3,
    member_id: 7,
    source: 'redemption',
    kind: 'cash_voucher',
    title: '100元代金券',
    points_cost: 500,
    status: 'unused',
    issued_at: '2026-11-20T06:30:00Z',
    expires_on: '2027-02-18',
    face_value_fen: 10000,
    reward_id: 1,
    store_id: null,
    used_at: null,
    used_store_id: null,
    cancelled_at: null,
  }, over);
}

function event(id, over = {}) {
  return Object.assign({
    id,
    store_id: 1,
    event_date: '2026-12-04',
    title: '静安店会员日',
    description: '会员专享体验名额，当日到店消费享会员日积分倍数。',
    opens_at: '2026-11-23T02:00:00Z',
    closes_at: '2026-12-03T10:00:00Z',
    cancel_deadline: '2026-12-03T04:00:00Z',
    min_tier_code: null,
    min_tier_name: null,
    points_bonus: true,
    status: 'published',
    cancel_reason: null,
    store_name: '静安店',
    my_opens_at: '2026-11-23T02:00:00Z',
    eligible: true,
    open_now: true,
    left: 12,
    my_booking: null,
  }, over);
}

function slot(id, over = {}) {
  return Object.assign({
    id,
    event_id: 1,
    starts_at: '2026-12-04T02:00:00Z',
    ends_at: '2026-12-04T03:00:00Z',
    service: '水光补水体验',
    capacity: 6,
    booked: 2,
    left: 4,
    status: 'open',
    full: false,
    my_waitlist: null,
  }, over);
}

function booking(id, over = {}) {
  return Object.assign({
    id,
    code: `B${id}XY7K`,
    status: 'booked',
    via: 'member',
    event_id: 1,
    event_title: '静安店会员日',
    event_date: '2026-12-04',
    store_id: 1,
    store_name: '静安店',
    slot_id: 11,
    starts_at: '2026-12-04T02:00:00Z',
    ends_at: '2026-12-04T03:00:00Z',
    service: '水光补水体验',
    cancel_deadline: '2026-12-03T04:00:00Z',
    cancellable: true,
    created_at: '2026-11-23T03:00:00Z',
    cancelled_at: null,
    checked_in_at: null,
  }, over);
}

const subscriptions = {
  scenes: {
    booking: ['SBX-BOOKING-CONFIRMED', 'SBX-BOOKING-REMINDER', 'SBX-WAITLIST-PROMOTED'],
    care: ['SBX-BIRTHDAY', 'SBX-RECALL', 'SBX-CARE'],
    points: ['SBX-POINTS-EXPIRING', 'SBX-TIER-CHANGED'],
  },
  quotas: {
    'SBX-BIRTHDAY': 0, 'SBX-BOOKING-CONFIRMED': 1, 'SBX-BOOKING-REMINDER': 0, 'SBX-CARE': 0,
    'SBX-POINTS-EXPIRING': 2, 'SBX-RECALL': 0, 'SBX-TIER-CHANGED': 0, 'SBX-WAITLIST-PROMOTED': 0,
  },
};

// GET /static/mp/manifest.json: stable name -> path with the content hash.
const manifest = {
  assets: {
    'card-normal': '/static/mp/card-normal.5d41402a.png',
    'card-gold': '/static/mp/card-gold.7d793037.png',
    'card-platinum': '/static/mp/card-platinum.6f8f5771.png',
    'card-diamond': '/static/mp/card-diamond.0cc175b9.png',
    'event-banner': '/static/mp/event-banner.92eb5ffe.png',
    'referral-share': '/static/mp/referral-share.4a8a08f0.png',
  },
};

// GET /member/account: a member who consented and joined.
function account(over = {}) {
  return Object.assign({
    consent: { policy_version: '2026-11', marketing: true, sensitive_health: false, consented_at: '2026-03-01T02:00:00Z' },
    phone_masked: '138****1234',
    customer_linked: true,
    is_member: true,
    referral_code: 'jMjPr5Xu',
    deletion_requested_at: null,
  }, over);
}

// POST /member/data-export: the request, answered at once, with the copy.
function dataExport(over = {}) {
  return Object.assign({
    request_id: 31,
    kind: 'export',
    status: 'completed',
    requested_at: '2026-11-24T02:00:00Z',
    handled_at: '2026-11-24T02:00:00Z',
    data: {
      wechat_account: [{ id: 5, openid: 'o-1', customer_id: 3, referral_code: 'jMjPr5Xu' }],
      consents: [{ id: 1, policy_version: '2026-11', marketing: true, sensitive_health: false }],
      customer: [{ id: 3, name: '叶怡', phone: '13812341234', birthday: null }],
      member: [{ id: 7, customer_id: 3, member_no: 'MH00000007' }],
      consumptions: [{ id: 1, amount_fen: 38000 }, { id: 2, amount_fen: 12000 }],
      points_entries: [{ id: 1, delta: 380 }, { id: 2, delta: 120 }, { id: 3, delta: -500 }],
      vouchers: [{ id: 4, code: 'V4ABCD2345' }],
      bookings: [],
    },
  }, over);
}

module.exports = { account, dataExport, tiers, card, entry, reward, voucher, event, slot, booking, subscriptions, manifest };
