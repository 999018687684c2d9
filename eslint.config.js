// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'charts/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      'no-console': 'off',
    },
  },
  {
    // The plugin prints through src/cli/plugin/terminal.ts only, which escapes terminal control characters.
    files: ['src/cli/plugin/**/*.ts'],
    ignores: ['src/cli/plugin/terminal.ts', 'src/cli/plugin/progress.ts', 'src/cli/plugin/**/*.test.ts'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "MemberExpression[object.type='MemberExpression'][object.object.name='process'][object.property.name=/^std(out|err)$/][property.name='write']",
        message: 'print through ./terminal.ts (text, textErr, data): it escapes terminal control characters from the cluster',
      }, {
        selector: "MemberExpression[object.name='console'][property.name=/^(log|error|warn|info)$/]",
        message: 'print through ./terminal.ts (text, textErr, data): it escapes terminal control characters from the cluster',
      }],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
