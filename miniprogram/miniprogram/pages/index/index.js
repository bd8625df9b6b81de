// 会员卡: where the member stands: tier, points, what is needed for the next tier, points about
// to expire, the daily check-in. The figures come from the backend every time the tab is shown
// and from the shared store the moment another page changes them (a redemption, a check-in).
const api = require('../../utils/api');
const store = require('../../utils/store');
const session = require('../../utils/session');
const errors = require('../../utils/errors');
const assets = require('../../utils/assets');
const { cardView } = require('./card-view');

Page({
  data: {
    status: 'loading', // loading | ready | not_member | error
    errorMessage: '',
    card: null,
    checking: false,
    artworkFailed: false,
  },

  onLoad(query) {
    session.captureReferral(query);
    this.offCard = store.on('card', (card) => {
      if (card) this.setData({ card: cardView(card), status: 'ready' });
    });
    // The artwork manifest may come after the card (or, after a failed launch, only now).
    this.offAssets = assets.onChange(() => this.showArtwork());
    assets.load();
    this.loaded = this.load();
  },

  onShow() {
    // Coming back from 积分兑换 or the desk's consumption: never show an old balance.
    if (this.shownOnce) this.load({ quiet: true });
    this.shownOnce = true;
  },

  onUnload() {
    if (this.offCard) this.offCard();
    if (this.offAssets) this.offAssets();
  },

  onPullDownRefresh() {
    this.load({ quiet: true }).then(() => wx.stopPullDownRefresh());
  },

  async load(opts = {}) {
    if (!opts.quiet || this.data.status !== 'ready') this.setData({ status: 'loading' });
    try {
      const card = await api.me();
      store.set('card', card);
    } catch (e) {
      if (e.code === 'not_member') {
        this.setData({ status: 'not_member' });
      } else if (!opts.quiet || this.data.status !== 'ready') {
        this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
      }
    }
  },

  onRetry() {
    this.load();
  },

  async onCheckin() {
    if (this.data.checking || !this.data.card || this.data.card.checkedIn) return;
    this.setData({ checking: true });
    try {
      const res = await api.checkin();
      store.patch('card', { points_balance: res.points_balance, checked_in_today: true });
      wx.showToast({ title: `签到成功 +${res.points} 积分`, icon: 'none' });
      this.load({ quiet: true });
    } catch (e) {
      if (e.code === 'already_checked_in') store.patch('card', { checked_in_today: true });
      wx.showToast({ title: errors.messageOf(e), icon: 'none' });
    } finally {
      this.setData({ checking: false });
    }
  },

  onArtworkError() {
    this.setData({ artworkFailed: true });
  },

  showArtwork() {
    const { card } = this.data;
    if (card) this.setData({ 'card.artwork': assets.tierArtwork(card.tierCode), artworkFailed: false });
  },

  goJoin() {
    wx.switchTab({ url: '/pages/mine/index' });
  },

  goRules() {
    wx.navigateTo({ url: '/pages/points/rules' });
  },

  goHistory() {
    wx.navigateTo({ url: '/pages/points/history' });
  },

  goRewards() {
    wx.navigateTo({ url: '/pages/rewards/index' });
  },

  goVouchers() {
    wx.navigateTo({ url: '/pages/vouchers/index' });
  },
});
