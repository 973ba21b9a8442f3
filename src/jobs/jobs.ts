import type { AppServices } from '../context';
import { auditRetentionJob } from '../modules/audit/audit.retention';
import { BILLING_JOBS } from '../modules/billing/billing.jobs';
import { notificationDigestJob } from '../modules/notification/notification-digest.job';
import { PURGE_JOB_KIND } from './organization-purge.job';
import { Scheduler, type SweepKind } from './scheduler';

/** Past minutes of the rate-limit counters (migration 1765600000000-rate-limits). */
export const RATE_LIMIT_SWEEP: SweepKind = { kind: 'rate_limit_sweep', sweepFunction: 'app_rate_limit_sweep' };

/**
 * The service's scheduler with every kind of due work registered. A new kind (e.g. the purge of
 * deleted organizations) is a `JobKind` added to this list, with its SECURITY DEFINER due lookup
 * created by a migration (see 1765100000000-subscriptions.ts).
 */
export function createScheduler(app: AppServices): Scheduler {
  return new Scheduler(app).register(...BILLING_JOBS, PURGE_JOB_KIND, notificationDigestJob, auditRetentionJob).registerSweep(RATE_LIMIT_SWEEP);
}
