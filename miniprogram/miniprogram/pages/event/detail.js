// One member day: its slots with what is left, and the member's own booking or waitlist place.
// Booking asks for the reminder subscription first, from the tap itself (WeChat refuses the
// popup otherwise), with template ids loaded with the page.
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const fmt = require('../../utils/format');
const subscribe = require('../../utils/subscribe');
const { newIdempotencyKey } = require('../../utils/request');
const { eventView } = require('../events/event-view');
const { slotView } = require('./slot-view');

Page({
  data: {
    status: 'loading', // loading | ready | error
    errorMessage: '',
    event: null,
    slots: [],
    busy: false,
  },

  onLoad(query) {
    this.eventId = Number(query && query.id);
    // Slot id -> Idempotency-Key of a booking whose answer never arrived, so tapping again
    // replays it instead of booking twice.
    this.pendingKeys = {};
    subscribe.load();
    this.load();
  },

  onShow() {
    this.startTicking();
  },

  onHide() {
    this.stopTicking();
  },

  onUnload() {
    this.stopTicking();
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
      const ev = await api.event(this.eventId);
      this.raw = ev;
      this.clockOffset = Date.parse(ev.server_time) - Date.now();
      this.render();
      wx.setNavigationBarTitle && wx.setNavigationBarTitle({ title: ev.title });
    } catch (e) {
      this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
    }
  },

  render() {
    const ev = this.raw;
    if (!ev) return;
    const now = this.serverNow();
    this.setData({
      status: 'ready',
      event: eventView(ev, now),
      slots: (ev.slots || []).map((s) => slotView(s, ev, now)),
    });
  },

  tick() {
    if (!this.raw || !this.data.event || this.data.event.state !== 'countdown') return;
    this.render();
    if (this.data.event.state !== 'countdown') this.load({ quiet: true });
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

  // The tap: the subscription popup must be the first thing it does.
  onBook(e) {
    const slotId = Number(e.currentTarget.dataset.id);
    if (this.data.busy) return null;
    this.setData({ busy: true });
    return subscribe.ask('booking').then(() => this.book(slotId));
  },

  async book(slotId) {
    const key = this.pendingKeys[slotId] || newIdempotencyKey();
    this.pendingKeys[slotId] = key;
    wx.showLoading({ title: '正在预约', mask: true });
    try {
      const res = await api.book(slotId, key);
      delete this.pendingKeys[slotId];
      wx.hideLoading();
      const b = res.booking;
      wx.showModal({
        title: '预约成功',
        content: `${fmt.shortDate(b.event_date)} ${fmt.time(b.starts_at)} ${b.service}\n到店时出示预约码 ${b.code}`,
        confirmText: '好的',
        cancelText: '我的预约',
        success: (r) => {
          if (r && r.cancel) wx.navigateTo({ url: '/pages/bookings/index' });
        },
      });
    } catch (err) {
      if (err.status) delete this.pendingKeys[slotId];
      wx.hideLoading();
      this.explainRefusal(err, slotId);
    } finally {
      this.setData({ busy: false });
      this.load({ quiet: true });
    }
  },

  explainRefusal(err, slotId) {
    if (err.code === 'slot_full') {
      wx.showModal({
        title: '这个时段刚刚约满',
        content: '可以加入候补，有名额空出时会按顺序为您预约并通知您。',
        confirmText: '加入候补',
        cancelText: '再看看',
        success: (r) => {
          if (r && r.confirm) this.joinWaitlist(slotId);
        },
      });
    } else if (err.code === 'not_open_yet' && err.details.opens_at) {
      wx.showToast({ title: `将于 ${fmt.datetime(err.details.opens_at)} 为您开放预约`, icon: 'none' });
    } else {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    }
  },

  onWaitlist(e) {
    const slotId = Number(e.currentTarget.dataset.id);
    if (this.data.busy) return null;
    this.setData({ busy: true });
    return subscribe.ask('booking').then(() => this.joinWaitlist(slotId));
  },

  async joinWaitlist(slotId) {
    this.setData({ busy: true });
    try {
      const res = await api.joinWaitlist(slotId);
      wx.showToast({ title: `已加入候补，当前第 ${res.entry.position} 位`, icon: 'none' });
    } catch (err) {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    } finally {
      this.setData({ busy: false });
      this.load({ quiet: true });
    }
  },

  onCancel(e) {
    const bookingId = Number(e.currentTarget.dataset.booking);
    wx.showModal({
      title: '取消这次预约？',
      content: `取消后名额会让给候补的会员。取消截止时间：${this.data.event.cancelDeadline}`,
      confirmText: '取消预约',
      cancelText: '再想想',
      success: (r) => {
        if (r && r.confirm) this.cancelBooking(bookingId);
      },
    });
  },

  async cancelBooking(bookingId) {
    try {
      await api.cancelBooking(bookingId);
      wx.showToast({ title: '已为您取消预约', icon: 'none' });
    } catch (err) {
      wx.showToast({ title: errors.messageOf(err), icon: 'none' });
    } finally {
      this.load({ quiet: true });
    }
  },

  onLeaveWaitlist(e) {
    const entryId = Number(e.currentTarget.dataset.entry);
    wx.showModal({
      title: '退出候补？',
      content: '退出后将不再为您保留候补顺序。',
      confirmText: '退出候补',
      cancelText: '再想想',
      success: async (r) => {
        if (!r || !r.confirm) return;
        try {
          await api.cancelWaitlist(entryId);
          wx.showToast({ title: '已退出候补', icon: 'none' });
        } catch (err) {
          wx.showToast({ title: errors.messageOf(err), icon: 'none' });
        } finally {
          this.load({ quiet: true });
        }
      },
    });
  },

  goBookings() {
    wx.navigateTo({ url: '/pages/bookings/index' });
  },
});
