import { Foundation1763900000000 } from './1763900000000-foundation';

/** Every migration, in order. Schema changes happen only here (synchronize is never on). */
export const MIGRATIONS = [Foundation1763900000000];
