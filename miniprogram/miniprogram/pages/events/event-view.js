// How a member day looks to this member right now: open for booking, counting down to their
// own opening time (earlier for higher tiers), closed, or not for their tier. "Now" is the
// server's clock, carried over as an offset, so a phone with a wrong clock still counts right.
const fmt = require('../../utils/format');

function stateOf(ev, serverNow) {
  const opens = Date.parse(ev.my_opens_at);
  const closes = Date.parse(ev.closes_at);
  if (ev.my_booking && ev.my_booking.status !== 'cancelled') return 'booked';
  if (!ev.eligible) return 'ineligible';
  if (serverNow >= closes) return 'closed';
  if (serverNow < opens) return 'countdown';
  return ev.open_now || serverNow >= opens ? 'open' : 'countdown';
}

const STATE_TEXT = {
  booked: '已预约',
  ineligible: '等级未满足',
  closed: '预约已截止',
  open: '预约中',
  countdown: '即将开放',
};

function eventView(ev, serverNow) {
  const state = stateOf(ev, serverNow);
  const opensIn = Date.parse(ev.my_opens_at) - serverNow;
  return {
    id: ev.id,
    title: ev.title,
    storeName: ev.store_name,
    date: fmt.shortDate(ev.event_date),
    description: ev.description,
    state,
    stateText: STATE_TEXT[state],
    countdown: state === 'countdown' ? fmt.countdown(opensIn) : '',
    opensAt: fmt.datetime(ev.my_opens_at),
    closesAt: fmt.datetime(ev.closes_at),
    cancelDeadline: fmt.datetime(ev.cancel_deadline),
    left: ev.left,
    leftText: ev.left > 0 ? `剩余 ${ev.left} 个名额` : '名额已满，可加入候补',
    tierNote: ev.min_tier_name ? `${ev.min_tier_name}及以上专享` : '',
    pointsBonus: !!ev.points_bonus,
    myBooking: ev.my_booking || null,
  };
}

module.exports = { stateOf, eventView, STATE_TEXT };
