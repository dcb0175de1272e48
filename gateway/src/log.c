#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = GW_LOG_INFO;

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

int gw_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, LEVEL_NAMES[i]) == 0)
            return i;
    return -1;
}

void gw_log_set_level(gw_log_level level)
{
    atomic_store(&min_level, (int)level);
}

void gw_log(gw_log_level level, const char *event, const char *fmt, ...)
{
    if ((int)level < atomic_load(&min_level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(line + n, sizeof(line) - n, ".%03dZ level=%s event=%s",
                     (int)(ts.tv_nsec / 1000000), LEVEL_NAMES[level], event);
    if (w > 0)
        n += (size_t)w < sizeof(line) - n ? (size_t)w : sizeof(line) - n - 1;
    if (fmt != NULL && n + 2 < sizeof(line)) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
        if (w > 0)
            n += (size_t)w < sizeof(line) - n ? (size_t)w : sizeof(line) - n - 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c > 0x7e)
            line[i] = '?';
    }
    line[n++] = '\n';
    /* One write per line: lines from different threads never interleave. */
    ssize_t rc = write(STDERR_FILENO, line, n);
    (void)rc;
}
