// 会员日 (tab): the member days this member can see, each with their own opening time and a
// countdown before it. Tapping one opens its slots.
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const assets = require('../../utils/assets');
const { eventView } = require('./event-view');

Page({
  data: {
    status: 'loading', // loading | ready | empty | not_member | error
    errorMessage: '',
    events: [],
    banner: '',
    bannerFailed: false,
  },

  onLoad() {
    this.showBanner();
    // The artwork manifest may come after the page opens (or, after a failed launch, only now).
    this.offAssets = assets.onChange(() => this.showBanner());
    assets.load();
    this.load();
  },

  onShow() {
    if (this.shownOnce) this.load({ quiet: true });
    this.shownOnce = true;
    this.startTicking();
  },

  onHide() {
    this.stopTicking();
  },

  onUnload() {
    this.stopTicking();
    if (this.offAssets) this.offAssets();
  },

  onPullDownRefresh() {
    this.load({ quiet: true }).then(() => wx.stopPullDownRefresh());
  },

  serverNow() {
    return Date.now() + (this.clockOffset || 0);
  },

  async load(opts = {}) {
    if (!opts.quiet || this.data.status !== 'ready') this.setData({ status: 'loading' });
    try {
      const res = await api.events();
      this.raw = res.items || [];
      this.clockOffset = Date.parse(res.server_time) - Date.now();
      this.render();
    } catch (e) {
      if (e.code === 'not_member') this.setData({ status: 'not_member' });
      else this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
    }
  },

  render() {
    const now = this.serverNow();
    const events = (this.raw || []).map((ev) => eventView(ev, now));
    this.setData({ events, status: events.length ? 'ready' : 'empty' });
  },

  // Once a second while the tab is visible; reloads when a countdown reaches its opening so
  // the button turns to 预约 with the server's word for it.
  tick() {
    if (!this.raw || !this.raw.length) return;
    const before = this.data.events.map((e) => e.state).join();
    this.render();
    const after = this.data.events.map((e) => e.state).join();
    if (before !== after) this.load({ quiet: true });
  },

  startTicking() {
    this.stopTicking();
    this.timer = setInterval(() => this.tick(), 1000);
  },

  stopTicking() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  },

  onRetry() {
    this.load();
  },

  showBanner() {
    this.setData({ banner: assets.assetUrl('event-banner'), bannerFailed: false });
  },

  onBannerError() {
    this.setData({ bannerFailed: true });
  },

  openEvent(e) {
    const { id } = e.currentTarget.dataset;
    wx.navigateTo({ url: `/pages/event/detail?id=${id}` });
  },

  goJoin() {
    wx.switchTab({ url: '/pages/mine/index' });
  },

  goBookings() {
    wx.navigateTo({ url: '/pages/bookings/index' });
  },
});
