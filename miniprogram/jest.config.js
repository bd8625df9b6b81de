const path = require('path');

module.exports = {
  rootDir: __dirname,
  testEnvironment: 'jsdom',
  testMatch: ['<rootDir>/test/**/*.test.js'],
  setupFiles: ['<rootDir>/test/setup.js'],
  setupFilesAfterEnv: ['<rootDir>/test/setup-after-env.js'],
  snapshotSerializers: ['miniprogram-simulate/jest-snapshot-plugin'],
  transform: { '^.+\\.js$': 'babel-jest' },
  // TDesign imports "tslib"; DevTools resolves it to the copy inside miniprogram_npm.
  moduleNameMapper: { '^tslib$': path.join(__dirname, 'node_modules/tslib/tslib.js') },
  transformIgnorePatterns: ['/node_modules/'],
  testTimeout: 20000,
};
