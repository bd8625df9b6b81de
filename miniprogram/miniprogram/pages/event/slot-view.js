// What each slot offers this member: book, join the waitlist, cancel, or why not. Decided from
// the event as the backend describes it for this member and the server's clock.
const fmt = require('../../utils/format');
const { stateOf } = require('../events/event-view');

function slotView(slot, ev, serverNow) {
  const eventState = stateOf(Object.assign({}, ev, { my_booking: null }), serverNow);
  const mine = ev.my_booking && ev.my_booking.status !== 'cancelled' && ev.my_booking.slot_id === slot.id;
  const base = {
    id: slot.id,
    time: `${fmt.time(slot.starts_at)}–${fmt.time(slot.ends_at)}`,
    service: slot.service,
    leftText: slot.left > 0 ? `剩余 ${slot.left} / ${slot.capacity}` : `已约满 · 共 ${slot.capacity} 位`,
    full: slot.full || slot.left <= 0,
    mine,
    bookingId: mine ? ev.my_booking.id : null,
    bookingCode: mine ? ev.my_booking.code : '',
    waitlistId: slot.my_waitlist ? slot.my_waitlist.id : null,
    waitlistText: slot.my_waitlist ? `您在候补第 ${slot.my_waitlist.position} 位` : '',
  };
  let action = 'none';
  let note = '';
  if (slot.status === 'cancelled') note = '该时段已取消';
  else if (mine) action = 'cancel';
  else if (slot.my_waitlist) action = 'leave_waitlist';
  else if (eventState === 'ineligible') note = ev.min_tier_name ? `${ev.min_tier_name}及以上可约` : '等级未满足';
  else if (ev.my_booking && ev.my_booking.status !== 'cancelled') note = '每场限约一次';
  else if (eventState === 'countdown') note = '未开放';
  else if (eventState === 'closed') note = '已截止';
  else if (base.full) action = 'waitlist';
  else action = 'book';
  return Object.assign(base, { action, note });
}

module.exports = { slotView };
