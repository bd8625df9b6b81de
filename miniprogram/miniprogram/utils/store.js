// A tiny shared store with change listeners. Pages keep their own data; what several pages
// show (the card's balance above all) lives here, so a redemption on one page updates the card
// on another at once instead of waiting for a manual refresh.

let state = {};
let listeners = {};

function get(key) {
  return state[key];
}

function set(key, value) {
  state[key] = value;
  (listeners[key] || []).slice().forEach((fn) => fn(value));
}

// Merges into an object value; a missing value stays missing (nothing to patch yet).
function patch(key, partial) {
  if (!state[key]) return;
  set(key, Object.assign({}, state[key], partial));
}

function on(key, fn) {
  (listeners[key] = listeners[key] || []).push(fn);
  return () => {
    listeners[key] = (listeners[key] || []).filter((f) => f !== fn);
  };
}

function reset() {
  state = {};
  listeners = {};
}

module.exports = { get, set, patch, on, reset };
