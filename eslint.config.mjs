// The size rules of the layout (issue 19): no source file over 400 lines, no function over 80 lines.
// Checked by test/unit/structure.test.ts; tests, fixtures and benchmarks are exempt. Formatting and
// style are not linted here.
import tseslint from 'typescript-eslint';

export default tseslint.config({
  files: ['src/**/*.ts'],
  languageOptions: { parser: tseslint.parser },
  linterOptions: { reportUnusedDisableDirectives: 'error' },
  rules: {
    'max-lines': ['error', { max: 400, skipBlankLines: false, skipComments: false }],
    'max-lines-per-function': ['error', { max: 80, skipBlankLines: false, skipComments: false, IIFEs: true }],
  },
});
