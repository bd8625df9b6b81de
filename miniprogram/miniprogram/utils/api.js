// The member API, one function per call (DESIGN section 12). Shapes are the backend's; see
// GET /api-docs/openapi.json.
const { request, download } = require('./request');

const m = (path) => `/member${path}`;

module.exports = {
  consent: (body) => request({ path: m('/consent'), method: 'POST', data: body }),
  bindPhone: (code) => request({ path: m('/phone'), method: 'POST', data: { code } }),
  join: (referralCode) => request({
    path: m('/join'),
    method: 'POST',
    data: referralCode ? { referral_code: referralCode } : {},
  }),
  // Where the member stands: consent, masked phone, linked, member, an open deletion request.
  account: () => request({ path: m('/account') }),
  me: () => request({ path: m('/me') }),
  updateProfile: (patch) => request({ path: m('/me'), method: 'PATCH', data: patch }),

  entries: (cursor, limit = 20) => request({ path: m('/points/entries'), query: { cursor, limit } }),
  rules: () => request({ path: m('/rules'), auth: false }),
  checkin: () => request({ path: m('/checkins'), method: 'POST' }),

  rewards: () => request({ path: m('/rewards') }),
  redeem: (rewardId, idempotencyKey) => request({
    path: m('/redemptions'),
    method: 'POST',
    data: { reward_id: rewardId },
    idempotent: true,
    idempotencyKey,
  }),
  vouchers: (status, cursor) => request({ path: m('/vouchers'), query: { status, cursor, limit: 20 } }),
  cancelVoucher: (id) => request({ path: m(`/vouchers/${id}/cancel`), method: 'POST' }),

  events: () => request({ path: m('/events') }),
  event: (id) => request({ path: m(`/events/${id}`) }),
  book: (slotId, idempotencyKey) => request({
    path: m('/bookings'),
    method: 'POST',
    data: { slot_id: slotId },
    idempotent: true,
    idempotencyKey,
  }),
  cancelBooking: (id) => request({ path: m(`/bookings/${id}/cancel`), method: 'POST' }),
  bookings: (cursor) => request({ path: m('/bookings'), query: { cursor, limit: 20 } }),
  waitlist: () => request({ path: m('/waitlist') }),
  joinWaitlist: (slotId) => request({ path: m('/waitlist'), method: 'POST', data: { slot_id: slotId } }),
  cancelWaitlist: (id) => request({ path: m(`/waitlist/${id}/cancel`), method: 'POST' }),

  subscriptions: () => request({ path: m('/subscriptions') }),
  reportSubscriptions: (results) => request({ path: m('/subscriptions'), method: 'POST', data: { results } }),

  referral: () => request({ path: m('/referral') }),
  // Clinic staff binding their own WeChat with the console's one-time ticket.
  bindStaff: (ticket) => request({ path: m('/staff-binding'), method: 'POST', data: { ticket } }),
  referralQrcode: () => download(m('/referral/qrcode')),

  // PIPL rights (DESIGN section 8): the export answers with the copy at once; a deletion is
  // recorded (202, or 200 with the request already open) and carried out by the store.
  requestDataExport: () => request({ path: m('/data-export'), method: 'POST' }),
  requestDeletion: () => request({ path: m('/deletion'), method: 'POST' }),
};
