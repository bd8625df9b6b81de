// What the card page shows, derived from GET /member/me, kept apart from the page so the
// arithmetic (progress, days left) is tested on its own.
const fmt = require('../../utils/format');
const assets = require('../../utils/assets');

function progressOf(card) {
  const next = card.next_tier;
  if (!next) {
    return { percent: 100, text: '您已是最高等级会员，感谢一路相伴', nextName: '' };
  }
  const threshold = Math.max(1, next.threshold_fen);
  const spent = Math.max(0, Math.min(card.spend_12m_fen, threshold));
  const percent = Math.floor((spent * 100) / threshold);
  const text = next.spend_needed_fen > 0
    ? `近 12 个月再消费 ${fmt.yuan(next.spend_needed_fen)} 即可升级为${next.name}`
    : `已达到${next.name}标准，升级即将生效`;
  return { percent, text, nextName: next.name };
}

function cardView(card) {
  const expiring = (card.expiring_soon || []).map((e) => {
    const days = fmt.daysBetween(card.today, e.expires_on);
    return {
      points: fmt.points(e.points),
      date: fmt.date(e.expires_on),
      daysLeft: days <= 0 ? '今天到期' : `${days} 天后到期`,
    };
  });
  return {
    memberNo: card.member_no,
    name: card.name || '',
    tierCode: card.tier.code,
    tierName: card.tier.name,
    benefits: card.tier.benefits || [],
    artwork: assets.tierArtwork(card.tier.code),
    balance: fmt.points(card.points_balance),
    validity: card.tier_valid_until ? `等级有效期至 ${fmt.date(card.tier_valid_until)}` : '等级长期有效',
    progress: progressOf(card),
    spend12m: fmt.yuan(card.spend_12m_fen),
    expiring,
    expiringTotal: fmt.points(card.expiring_soon_total || 0),
    checkedIn: !!card.checked_in_today,
  };
}

module.exports = { cardView, progressOf };
