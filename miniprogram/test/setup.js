// Runs before every test file: a wx with working storage (simulate's keeps nothing), the
// develop environment without the sandbox helpers (tests register codes themselves), and Page()
// running on Component(), as miniprogram-simulate has no Page constructor.
const storage = new Map();

global.__storage = storage;
global.wx = {
  getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
  setStorageSync: (k, v) => {
    storage.set(k, v);
  },
  removeStorageSync: (k) => {
    storage.delete(k);
  },
  getAccountInfoSync: () => ({ miniProgram: { appId: 'wxtest', envVersion: 'develop', version: '' } }),
  // TDesign turns on virtualHost from base library 2.19.2, and a virtual host has no node that
  // a test can read or tap (TDesign's own tests turn it off too), so report an older one.
  getAppBaseInfo: () => ({ SDKVersion: '2.19.1', language: 'zh_CN', theme: 'light', host: { env: 'WeChat' } }),
};

global.getApp = () => ({ globalData: {} });
global.getCurrentPages = () => [];

// Page lifecycle hooks (onLoad, onShow, ...) become methods; tests call them the way WeChat
// would. Component-only keys are passed through so a page can use them if it wants.
global.Page = (options) => {
  const { data, ...rest } = options;
  const methods = {};
  const other = {};
  Object.keys(rest).forEach((k) => {
    if (typeof rest[k] === 'function') methods[k] = rest[k];
    else other[k] = rest[k];
  });
  Component(Object.assign(other, { data, methods }));
};
