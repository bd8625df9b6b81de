// 积分兑换: the rewards catalogue with price, stock and whether this member can redeem each,
// and why not. A redemption is confirmed first, carries an Idempotency-Key (kept for a re-tap
// after a lost answer, so the points are never taken twice) and updates the card's balance at
// once through the shared store.
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const fmt = require('../../utils/format');
const store = require('../../utils/store');
const { newIdempotencyKey } = require('../../utils/request');

const KIND_LABEL = { cash_voucher: '代金券', service: '护理体验', product: '礼品' };

function whyNot(r, balance) {
  switch (r.ineligible_reason) {
    case 'tier_too_low': return `${r.min_tier_name || '更高等级'}及以上可兑`;
    case 'sold_out': return '已兑完';
    case 'limit_reached': return '已达兑换上限';
    case 'insufficient_points': return `还差 ${fmt.points(Math.max(0, r.points_price - balance))} 积分`;
    default: return r.eligible ? '' : '暂不可兑换';
  }
}

function rewardView(r, balance) {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    kind: KIND_LABEL[r.kind] || '礼品',
    price: fmt.points(r.points_price),
    pricePoints: r.points_price,
    faceValue: r.face_value_fen ? `面值 ${fmt.yuan(r.face_value_fen)}` : '',
    stock: r.stock_left > 0 ? `剩 ${r.stock_left} 份` : '已兑完',
    limit: r.per_member_limit ? `每人限兑 ${r.per_member_limit} 份${r.redeemed ? `，已兑 ${r.redeemed} 份` : ''}` : '',
    tierNote: r.min_tier_name ? `${r.min_tier_name}专享` : '',
    validDays: r.voucher_valid_days,
    eligible: !!r.eligible,
    reason: whyNot(r, balance),
  };
}

Page({
  data: {
    status: 'loading', // loading | ready | empty | not_member | error
    errorMessage: '',
    balance: '',
    rewards: [],
    redeeming: 0,
  },

  onLoad() {
    this.pendingKeys = {};
    this.load();
  },

  onPullDownRefresh() {
    this.load({ quiet: true }).then(() => wx.stopPullDownRefresh());
  },

  async load(opts = {}) {
    if (!opts.quiet || this.data.status !== 'ready') this.setData({ status: 'loading' });
    try {
      const res = await api.rewards();
      const rewards = (res.rewards || []).map((r) => rewardView(r, res.points_balance));
      this.setData({
        balance: fmt.points(res.points_balance),
        rewards,
        status: rewards.length ? 'ready' : 'empty',
      });
    } catch (e) {
      if (e.code === 'not_member') this.setData({ status: 'not_member' });
      else this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
    }
  },

  onRetry() {
    this.load();
  },

  onRedeem(e) {
    const id = Number(e.currentTarget.dataset.id);
    const reward = this.data.rewards.find((r) => r.id === id);
    if (!reward || !reward.eligible || this.data.redeeming) return;
    wx.showModal({
      title: '确认兑换',
      content: `使用 ${reward.price} 积分兑换「${reward.name}」？兑换后券放入“我的券”，${reward.validDays} 天内到店使用。`,
      confirmText: '确认兑换',
      cancelText: '再想想',
      success: (r) => {
        if (r && r.confirm) this.redeem(reward);
      },
    });
  },

  async redeem(reward) {
    const key = this.pendingKeys[reward.id] || newIdempotencyKey();
    this.pendingKeys[reward.id] = key;
    this.setData({ redeeming: reward.id });
    wx.showLoading({ title: '正在兑换', mask: true });
    try {
      const res = await api.redeem(reward.id, key);
      delete this.pendingKeys[reward.id];
      // The card shows the new balance at once; it re-reads the rest (expiring points) on show.
      store.patch('card', { points_balance: res.points_balance });
      wx.hideLoading();
      wx.showModal({
        title: '兑换成功',
        content: `「${res.voucher.title}」已放入“我的券”，券码 ${res.voucher.code}，有效期至 ${fmt.date(res.voucher.expires_on)}。`,
        confirmText: '查看我的券',
        cancelText: '继续逛逛',
        success: (r) => {
          if (r && r.confirm) wx.navigateTo({ url: '/pages/vouchers/index' });
        },
      });
    } catch (err) {
      // A refusal is final; only a lost answer keeps its key for the next tap.
      if (err.status) delete this.pendingKeys[reward.id];
      wx.hideLoading();
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    } finally {
      this.setData({ redeeming: 0 });
      this.load({ quiet: true });
    }
  },

  goVouchers() {
    wx.navigateTo({ url: '/pages/vouchers/index' });
  },

  goJoin() {
    wx.switchTab({ url: '/pages/mine/index' });
  },
});
