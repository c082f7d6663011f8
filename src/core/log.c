/* Structured logging. The only process-wide state is the level, written before any thread
 * starts. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"

static enum hr_log_level min_level = HR_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void hr_log_set_level(enum hr_log_level level)
{
    min_level = level;
}

int hr_log_parse_level(const char *name, enum hr_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum hr_log_level)i;
            return 0;
        }
    }
    return -1;
}

void hr_log(enum hr_log_level level, const char *event, const char *fmt, ...)
{
    if (level < min_level) return;
    char line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, level_names[level], event);
    if (n < 0 || (size_t)n >= sizeof line) n = (int)sizeof line - 1;
    if (fmt && *fmt && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0) n += m;
        if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    }
    line[n] = '\0';
    fprintf(stderr, "%s\n", line);
}

char *hr_log_quote(char *dst, size_t dst_size, const char *src, size_t src_len)
{
    static const char hex[] = "0123456789abcdef";
    size_t out = 0;
    if (dst_size < 3) {
        if (dst_size) dst[0] = '\0';
        return dst;
    }
    dst[out++] = '"';
    for (size_t i = 0; i < src_len; i++) {
        unsigned char c = (unsigned char)src[i];
        size_t need = (c < 0x20 || c == 0x7f) ? 4 : (c == '"' || c == '\\') ? 2 : 1;
        if (out + need + 2 > dst_size) break;
        if (need == 4) {
            dst[out++] = '\\';
            dst[out++] = 'x';
            dst[out++] = hex[c >> 4];
            dst[out++] = hex[c & 15];
        } else {
            if (need == 2) dst[out++] = '\\';
            dst[out++] = (char)c;
        }
    }
    dst[out++] = '"';
    dst[out] = '\0';
    return dst;
}
