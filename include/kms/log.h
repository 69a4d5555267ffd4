/*
 * log.h - the small logging family: one line per event on stderr, with a level and UTC time.
 * Never pass key material, plaintext, secret values or access-key secrets to these.
 */
#ifndef KMS_LOG_H
#define KMS_LOG_H

void kms_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kms_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kms_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs and exits with status 1: for start-up failures only. */
void kms_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Quiet mode suppresses info lines (tests); warnings and errors always print. */
void kms_log_set_quiet(int quiet);

#endif
