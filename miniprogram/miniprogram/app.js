// The member mini-program. Pages, the API client and tests arrive with the mini-program issue;
// this shell only has to open in WeChat DevTools.
App({
  globalData: {}
});
