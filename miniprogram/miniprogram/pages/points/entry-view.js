// One ledger entry as a member reads it: what kind of change, why, how much, the balance after.
// Earned points show in the accent colour with "+", spending in ink with "-", expiry greyed
// with its own label, so the three can never be mistaken for one another.
const fmt = require('../../utils/format');

const KINDS = {
  earn: { label: '获得', cls: 'earn' },
  spend: { label: '使用', cls: 'spend' },
  expire: { label: '过期', cls: 'expire' },
  reverse: { label: '退款扣回', cls: 'spend' },
  adjust: { label: '门店调整', cls: 'adjust' },
};

const SOURCES = {
  consumption: '到店消费',
  refund: '消费退款',
  referral: '推荐好友奖励',
  referral_reversal: '推荐奖励撤回',
  checkin: '每日签到',
  adjust: '门店调整',
  redemption: '积分兑换',
  voucher_cancel: '取消兑换退回',
  expiry: '积分到期',
};

function entryView(e) {
  const kind = KINDS[e.kind] || { label: '变动', cls: 'adjust' };
  return {
    id: e.id,
    kind: e.kind,
    kindLabel: kind.label,
    cls: kind.cls,
    title: e.reason || SOURCES[e.source] || kind.label,
    source: SOURCES[e.source] || '',
    delta: fmt.signedPoints(e.delta),
    balanceAfter: fmt.points(e.balance_after),
    time: fmt.datetime(e.created_at),
  };
}

module.exports = { entryView, KINDS, SOURCES };
