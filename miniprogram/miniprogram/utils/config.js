// Where the backend lives for each version of the mini-program. WeChat only lets a released
// mini-program call domains registered under 开发管理 -> 服务器域名, so release points at the
// clinic's real API domain; a developer's DevTools talks to the sandbox backend on the laptop.

// Placeholder: replace with the domain registered for the real appid before the first upload.
const RELEASE_BASE_URL = 'https://api.memberhub.example.com';
// 体验版 (trial) testers use the same backend as release unless a tester overrides it.
const TRIAL_BASE_URL = RELEASE_BASE_URL;
// `memberhub --demo` with MEMBERHUB_SERVER__PORT=8080 (see the README).
const DEVELOP_BASE_URL = 'http://127.0.0.1:8080';

// A developer points DevTools at another backend with
// wx.setStorageSync('memberhub.apiBase', 'http://127.0.0.1:18080'); release ignores it, so a
// member's phone can never be steered to another server.
const OVERRIDE_KEY = 'memberhub.apiBase';

// The version of the privacy policy the consent screen shows (pages/privacy/policy).
const POLICY_VERSION = '2026-11';

function envVersion() {
  try {
    const info = wx.getAccountInfoSync();
    return (info && info.miniProgram && info.miniProgram.envVersion) || 'develop';
  } catch (e) {
    return 'develop';
  }
}

function trimSlash(url) {
  return String(url).replace(/\/+$/, '');
}

function baseUrl() {
  const env = envVersion();
  if (env === 'release') return RELEASE_BASE_URL;
  const override = wx.getStorageSync(OVERRIDE_KEY);
  if (override) return trimSlash(override);
  return env === 'trial' ? TRIAL_BASE_URL : DEVELOP_BASE_URL;
}

// The WeChat sandbox's control plane only exists on a backend without a real appid. DevTools'
// wx.login hands out codes the sandbox has never seen, so in develop the request layer
// registers each code with the control plane before logging in (and the 我的 page offers a
// test phone); wx.setStorageSync('memberhub.sandbox', 'off') turns that off against a real
// backend. Trial and release never touch the control plane.
const SANDBOX_KEY = 'memberhub.sandbox';

function sandboxHelpersEnabled() {
  return envVersion() === 'develop' && wx.getStorageSync(SANDBOX_KEY) !== 'off';
}

module.exports = {
  RELEASE_BASE_URL,
  TRIAL_BASE_URL,
  DEVELOP_BASE_URL,
  OVERRIDE_KEY,
  SANDBOX_KEY,
  POLICY_VERSION,
  envVersion,
  baseUrl,
  sandboxHelpersEnabled,
};
