// Fresh storage, store and wx doubles for every test.
const simulate = require('miniprogram-simulate');
const simulateUtils = require('miniprogram-simulate/src/utils');

// simulate registers a component by running its JS file, which calls Component(). jest runs a
// file once per test file, so a component shared by two pages (status-block, every TDesign
// component) would be registered only for the first page loaded. Remember each file's
// Component() options and replay them when simulate runs the file again.
const definitions = new Map();
const simulateComponent = global.Component;
let runningFile = null;
let registered = false;

function copyOptions(options) {
  const copy = Object.assign({}, options);
  // simulate rewrites relation keys in place (path -> id); each registration needs the paths.
  if (options.relations) {
    copy.relations = {};
    Object.keys(options.relations).forEach((k) => {
      copy.relations[k] = Object.assign({}, options.relations[k]);
    });
  }
  return copy;
}

global.Component = (options) => {
  if (runningFile && !definitions.has(runningFile)) definitions.set(runningFile, copyOptions(options));
  registered = true;
  return simulateComponent(options);
};

const runJs = simulateUtils.runJs;
simulateUtils.runJs = (filePath) => {
  runningFile = filePath;
  registered = false;
  try {
    runJs(filePath);
    if (!registered && definitions.has(filePath)) simulateComponent(copyOptions(definitions.get(filePath)));
  } finally {
    runningFile = null;
  }
};

const baseWx = Object.assign({}, global.wx);

beforeEach(() => {
  // The journey test is one member's session from test to test, as on a phone.
  if (!global.__keepSession) {
    global.__storage.clear();
    global.__storage.set('memberhub.sandbox', 'off');
    require('../miniprogram/utils/store').reset();
  }
  Object.assign(global.wx, baseWx, {
    login: jest.fn((o) => setTimeout(() => o.success({ code: 'wx-code' }), 0)),
    showToast: jest.fn(),
    showModal: jest.fn((o) => setTimeout(() => o.success && o.success({ confirm: true, cancel: false }), 0)),
    showLoading: jest.fn(),
    hideLoading: jest.fn(),
    navigateTo: jest.fn(),
    switchTab: jest.fn(),
    stopPullDownRefresh: jest.fn(),
    requestSubscribeMessage: jest.fn((o) => setTimeout(() => o.success && o.success({ errMsg: 'requestSubscribeMessage:ok' }), 0)),
    setClipboardData: jest.fn((o) => o && o.success && o.success()),
    previewImage: jest.fn(),
  });
});

