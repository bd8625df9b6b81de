// 积分明细: every change to the balance, newest first, loaded a page at a time as the member
// scrolls (the backend's cursor).
const api = require('../../utils/api');
const errors = require('../../utils/errors');
const { entryView } = require('./entry-view');

Page({
  data: {
    status: 'loading', // loading | ready | empty | error
    errorMessage: '',
    entries: [],
    loadingMore: false,
    moreError: '',
    done: false,
  },

  onLoad() {
    this.load();
  },

  onPullDownRefresh() {
    this.load().then(() => wx.stopPullDownRefresh());
  },

  onReachBottom() {
    this.loadMore();
  },

  async load() {
    this.setData({ status: 'loading', entries: [], done: false, moreError: '' });
    this.cursor = null;
    try {
      const page = await api.entries(null);
      this.cursor = page.next_cursor;
      const entries = (page.items || []).map(entryView);
      this.setData({ entries, done: !page.next_cursor, status: entries.length ? 'ready' : 'empty' });
    } catch (e) {
      this.setData({ status: 'error', errorMessage: errors.messageOf(e) });
    }
  },

  async loadMore() {
    if (this.data.status !== 'ready' || this.data.done || this.data.loadingMore || !this.cursor) return;
    this.setData({ loadingMore: true, moreError: '' });
    try {
      const page = await api.entries(this.cursor);
      this.cursor = page.next_cursor;
      this.setData({
        entries: this.data.entries.concat((page.items || []).map(entryView)),
        done: !page.next_cursor,
      });
    } catch (e) {
      this.setData({ moreError: errors.messageOf(e) });
    } finally {
      this.setData({ loadingMore: false });
    }
  },

  onRetry() {
    this.load();
  },
});
