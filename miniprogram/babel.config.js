// Only for jest: TDesign's dist is ES modules importing tslib, which DevTools compiles to ES5
// on developers' machines; jest needs babel for the same.
module.exports = { presets: [['@babel/preset-env', { targets: { node: 'current' } }]] };
