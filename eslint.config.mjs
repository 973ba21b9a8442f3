// ESLint 10 flat config: @eslint/js + typescript-eslint recommended, TypeScript sources only.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { defineConfig, globalIgnores } from 'eslint/config';

const tsFiles = ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'explorer/**/*.{ts,tsx}', 'ormconfig.ts'];

export default defineConfig([
  globalIgnores(['dist/', '.test-build/', 'node_modules/', '.data/', 'coverage/']),
  {
    files: tsFiles,
    extends: [js.configs.recommended, tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
    },
  },
  {
    // Tests read GraphQL responses, which are untyped JSON by nature.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
]);
