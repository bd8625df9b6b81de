// 我的预约: member-day bookings (with the code to show at the desk) and waitlist places.
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const fmt = require('../../utils/format');

const STATUS = {
  booked: { text: '待到店', theme: 'primary' },
  checked_in: { text: '已到店', theme: 'success' },
  no_show: { text: '未到店', theme: 'default' },
  cancelled: { text: '已取消', theme: 'default' },
};

function bookingView(b) {
  const s = STATUS[b.status] || { text: b.status, theme: 'default' };
  return {
    id: b.id,
    code: b.code,
    status: b.status,
    statusText: s.text,
    theme: s.theme,
    viaWaitlist: b.via === 'waitlist',
    title: b.event_title,
    store: b.store_name,
    when: `${fmt.shortDate(b.event_date)} ${fmt.time(b.starts_at)}–${fmt.time(b.ends_at)}`,
    service: b.service,
    cancellable: !!b.cancellable,
    cancelDeadline: fmt.datetime(b.cancel_deadline),
  };
}

function waitView(w) {
  return {
    id: w.id,
    title: w.event_title,
    when: `${fmt.shortDate(w.event_date)} ${fmt.time(w.starts_at)}`,
    service: w.service,
    position: w.position,
    status: w.status,
  };
}

Page({
  data: {
    status: 'loading', // loading | ready | empty | not_member | error
    errorMessage: '',
    bookings: [],
    waiting: [],
    openId: 0,
    done: true,
  },

  onLoad() {
    this.load();
  },

  onPullDownRefresh() {
    this.load({ quiet: true }).then(() => wx.stopPullDownRefresh());
  },

  onReachBottom() {
    this.loadMore();
  },

  async load(opts = {}) {
    if (!opts.quiet || this.data.status !== 'ready') this.setData({ status: 'loading' });
    this.cursor = null;
    try {
      const [page, wl] = await Promise.all([api.bookings(null), api.waitlist()]);
      this.cursor = page.next_cursor;
      const bookings = (page.items || []).map(bookingView);
      const waiting = (wl.items || []).filter((w) => w.status === 'waiting').map(waitView);
      this.setData({
        bookings,
        waiting,
        done: !page.next_cursor,
        status: bookings.length || waiting.length ? 'ready' : 'empty',
      });
    } catch (e) {
      if (e.code === 'not_member') this.setData({ status: 'not_member' });
      else this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
    }
  },

  async loadMore() {
    if (this.data.done || !this.cursor || this.loadingMore) return;
    this.loadingMore = true;
    try {
      const page = await api.bookings(this.cursor);
      this.cursor = page.next_cursor;
      this.setData({ bookings: this.data.bookings.concat((page.items || []).map(bookingView)), done: !page.next_cursor });
    } catch (e) {
      wx.showToast({ title: errors.messageOf(e), icon: 'none' });
    } finally {
      this.loadingMore = false;
    }
  },

  onRetry() {
    this.load();
  },

  onToggle(e) {
    const id = Number(e.currentTarget.dataset.id);
    this.setData({ openId: this.data.openId === id ? 0 : id });
  },

  onCancel(e) {
    const id = Number(e.currentTarget.dataset.id);
    const b = this.data.bookings.find((x) => x.id === id);
    if (!b) return;
    wx.showModal({
      title: '取消这次预约？',
      content: `${b.when} ${b.service}，取消后名额会让给候补的会员。`,
      confirmText: '取消预约',
      cancelText: '再想想',
      success: async (r) => {
        if (!r || !r.confirm) return;
        try {
          await api.cancelBooking(id);
          wx.showToast({ title: '已为您取消预约', icon: 'none' });
        } catch (err) {
          wx.showToast({ title: errors.messageOf(err), icon: 'none' });
        } finally {
          this.load({ quiet: true });
        }
      },
    });
  },

  onLeaveWaitlist(e) {
    const id = Number(e.currentTarget.dataset.id);
    wx.showModal({
      title: '退出候补？',
      content: '退出后将不再为您保留候补顺序。',
      confirmText: '退出候补',
      cancelText: '再想想',
      success: async (r) => {
        if (!r || !r.confirm) return;
        try {
          await api.cancelWaitlist(id);
          wx.showToast({ title: '已退出候补', icon: 'none' });
        } catch (err) {
          wx.showToast({ title: errors.messageOf(err), icon: 'none' });
        } finally {
          this.load({ quiet: true });
        }
      },
    });
  },

  goEvents() {
    wx.switchTab({ url: '/pages/events/index' });
  },
});
