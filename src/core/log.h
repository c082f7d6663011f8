/* One structured line per event, logfmt: ts=... level=... event=... key=value ...
 * Safe from any thread (one fprintf per line; stdio locks the stream). */
#ifndef HR_LOG_H
#define HR_LOG_H

enum hr_log_level { HR_LOG_DEBUG, HR_LOG_INFO, HR_LOG_WARN, HR_LOG_ERROR };

/* Set once at start, before threads exist; read-only afterwards. */
void hr_log_set_level(enum hr_log_level level);
int hr_log_parse_level(const char *name, enum hr_log_level *out);

/* `fmt` formats the key=value tail; values with spaces must be quoted by the caller
 * (hr_log_quote helps). */
void hr_log(enum hr_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies `src` into `dst` as a logfmt-safe quoted value ("..." with \" and control bytes as \xNN),
 * truncated to fit. Returns dst. */
char *hr_log_quote(char *dst, size_t dst_size, const char *src, size_t src_len);

#define hr_debug(ev, ...) hr_log(HR_LOG_DEBUG, ev, __VA_ARGS__)
#define hr_info(ev, ...)  hr_log(HR_LOG_INFO, ev, __VA_ARGS__)
#define hr_warn(ev, ...)  hr_log(HR_LOG_WARN, ev, __VA_ARGS__)
#define hr_error(ev, ...) hr_log(HR_LOG_ERROR, ev, __VA_ARGS__)

#endif
