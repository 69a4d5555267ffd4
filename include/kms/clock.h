/*
 * clock.h - the one clock timed work reads (deletion, rotation, material and token expiry).
 *
 * In release builds it is the system clock. Test builds (KMS_TEST_HOOKS) let integration tests
 * move it forward through the admin-only KmsdTestAdvanceClock action. Request timestamps are
 * always checked against the real clock, never this one.
 */
#ifndef KMS_CLOCK_H
#define KMS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Seconds since the epoch, as timed work sees them. */
time_t kms_clock_now(void);

#ifdef KMS_TEST_HOOKS
/* Moves the timed-work clock forward by seconds (test builds only). */
void kms_clock_advance(int64_t seconds);
#endif

#endif
