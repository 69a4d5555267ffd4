/*
 * log.c - stderr logging with a level and UTC timestamp per line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kms/log.h"
#include "kms/util.h"

static int kms_log_quiet;

void kms_log_set_quiet(int quiet)
{
    kms_log_quiet = quiet;
}

static void kms_log_line(const char *level, const char *fmt, va_list ap)
{
    char when[KMS_TIME_LEN];
    char line[1024];

    kms_time_format(time(NULL), when);
    vsnprintf(line, sizeof(line), fmt, ap);
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "%s kmsd[%s] %s\n", when, level, line);
}

void kms_log_info(const char *fmt, ...)
{
    va_list ap;

    if (kms_log_quiet)
        return;
    va_start(ap, fmt);
    kms_log_line("info", fmt, ap);
    va_end(ap);
}

void kms_log_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kms_log_line("warn", fmt, ap);
    va_end(ap);
}

void kms_log_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kms_log_line("error", fmt, ap);
    va_end(ap);
}

void kms_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kms_log_line("fatal", fmt, ap);
    va_end(ap);
    exit(1);
}
