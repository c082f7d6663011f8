#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/publish_body.h"
#include "core/clock.h"
#include "core/id.h"

int hr_event_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > HR_EVENT_MAX_LEN) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) return 0;
    }
    return 1;
}

static int fail(char *err, size_t size, const char *message)
{
    snprintf(err, size, "%s", message);
    return -1;
}

_Static_assert(HR_ID_CHOSEN_MAX == 9006099743113215ull, "the refusal below names the bound");

/* A chosen id: 1..HR_ID_CHOSEN_MAX, as a JSON integer or its decimal string. */
static int parse_id(json_t *value, uint64_t *out)
{
    if (json_is_integer(value)) {
        json_int_t id = json_integer_value(value);
        if (id <= 0 || (uint64_t)id > HR_ID_CHOSEN_MAX) return -1;
        *out = (uint64_t)id;
        return 0;
    }
    if (json_is_string(value))
        return hr_id_parse(json_string_value(value), json_string_length(value), out) == 0 &&
                       *out > 0 && *out <= HR_ID_CHOSEN_MAX
                   ? 0
                   : -1;
    return -1;
}

enum hr_fcm_mode hr_fcm_mode_parse(const char *text, size_t len)
{
    static const char *const names[] = {"never", "offline", "always"};
    for (int i = 0; i < 3; i++)
        if (strlen(names[i]) == len && memcmp(names[i], text, len) == 0)
            return (enum hr_fcm_mode)(HR_FCM_NEVER + i);
    return HR_FCM_DEFAULT;
}

static int string_field(json_t *push, const char *key, size_t max)
{
    json_t *value = json_object_get(push, key);
    return !value || (json_is_string(value) && json_string_length(value) <= max);
}

int hr_push_fields_check(json_t *push, char *err, size_t err_size)
{
    if (!json_is_object(push)) return fail(err, err_size, "\"push\" must be an object");
    const char *key;
    json_t *value;
    json_object_foreach(push, key, value)
    {
        if (strcmp(key, "title") && strcmp(key, "body") && strcmp(key, "collapse_key") &&
            strcmp(key, "ttl") && strcmp(key, "priority") && strcmp(key, "data"))
            return fail(err, err_size,
                        "\"push\" takes title, body, collapse_key, ttl, priority and data");
    }
    if (!string_field(push, "title", 256) || !string_field(push, "body", 2048) ||
        !string_field(push, "collapse_key", 64))
        return fail(err, err_size,
                    "push title, body and collapse_key are strings of at most 256, 2048 and 64 "
                    "bytes");
    json_t *ttl = json_object_get(push, "ttl");
    if (ttl &&
        (!json_is_integer(ttl) || json_integer_value(ttl) < 0 || json_integer_value(ttl) > 2419200))
        return fail(err, err_size, "push ttl is whole seconds in 0..2419200 (28 days)");
    const char *priority = json_string_value(json_object_get(push, "priority"));
    if (json_object_get(push, "priority") &&
        (!priority || (strcmp(priority, "high") && strcmp(priority, "normal"))))
        return fail(err, err_size, "push priority is high or normal");
    json_t *data = json_object_get(push, "data");
    size_t bytes = 0;
    if (data && !json_is_object(data))
        return fail(err, err_size, "push data is an object of strings");
    json_object_foreach(data, key, value)
    {
        if (!json_is_string(value)) return fail(err, err_size, "push data is an object of strings");
        bytes += strlen(key) + json_string_length(value);
    }
    if (bytes > 3072) return fail(err, err_size, "push data over 3072 bytes (FCM allows 4 KiB)");
    return 0;
}

static int digits(const char *text, size_t len, int64_t *out)
{
    int64_t value = 0;
    if (len == 0 || len > 15) return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return -1;
        value = value * 10 + (text[i] - '0');
    }
    *out = value;
    return 0;
}

static int within(int64_t at_ms, int64_t now_ms, int64_t *out_ms)
{
    if (at_ms > now_ms + HR_DELAY_MAX_MS) return -1;
    *out_ms = at_ms < now_ms ? now_ms : at_ms;
    return 0;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
static int rfc3339(const char *s, size_t len, int64_t *out_ms)
{
    int64_t y, mo, d, h, mi, sec, ms = 0;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':' || digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec) || mo < 1 ||
        mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    size_t at = 19;
    if (at < len && s[at] == '.') {
        int64_t scale = 100;
        for (at++; at < len && s[at] >= '0' && s[at] <= '9'; at++, scale /= 10)
            ms += (s[at] - '0') * scale;
    }
    int64_t offset_min = 0;
    if (at == len - 1 && (s[at] == 'Z' || s[at] == 'z')) {
    } else if (at == len - 6 && (s[at] == '+' || s[at] == '-') && s[at + 3] == ':') {
        int64_t oh, om;
        if (digits(s + at + 1, 2, &oh) || digits(s + at + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_min = (oh * 60 + om) * (s[at] == '-' ? -1 : 1);
    } else {
        return -1;
    }
    int64_t days = days_from_civil(y, mo, d);
    *out_ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms;
    return 0;
}

int hr_deliver_at_parse(const char *text, size_t len, int64_t now_ms, int64_t *out_ms)
{
    int64_t at;
    if (digits(text, len, &at) != 0 && rfc3339(text, len, &at) != 0) return -1;
    return within(at, now_ms, out_ms);
}

int hr_delay_parse(const char *text, size_t len, int64_t now_ms, int64_t *out_ms)
{
    int64_t delay;
    if (digits(text, len, &delay) != 0 || delay > HR_DELAY_MAX_MS) return -1;
    return within(now_ms + delay, now_ms, out_ms);
}

static int push_options(json_t *root, hr_pub_body_t *out, char *err, size_t err_size)
{
    json_t *fcm = json_object_get(root, "fcm");
    if (fcm && !json_is_null(fcm) &&
        (!json_is_string(fcm) ||
         !(out->fcm = hr_fcm_mode_parse(json_string_value(fcm), json_string_length(fcm)))))
        return fail(err, err_size, "\"fcm\" must be never, offline or always");
    json_t *push = json_object_get(root, "push");
    if (push && !json_is_null(push)) {
        if (hr_push_fields_check(push, err, err_size) != 0) return -1;
        out->push = push;
    }
    json_t *at = json_object_get(root, "deliver_at"), *delay = json_object_get(root, "delay");
    if (at && delay) return fail(err, err_size, "give \"deliver_at\" or \"delay\", not both");
    char text[32];
    int64_t now = hr_clock_unix_ms();
    if (at && !json_is_null(at)) {
        int n = json_is_integer(at)
                    ? snprintf(text, sizeof text, "%lld", (long long)json_integer_value(at))
                    : -1;
        const char *value = n > 0 ? text : json_string_value(at);
        size_t len = n > 0 ? (size_t)n : json_string_length(at);
        if (!value || hr_deliver_at_parse(value, len, now, &out->deliver_at_ms) != 0)
            return fail(err, err_size,
                        "\"deliver_at\" is an RFC 3339 time or unix ms, at most 30 days ahead");
    }
    if (delay && !json_is_null(delay)) {
        int n = json_is_integer(delay)
                    ? snprintf(text, sizeof text, "%lld", (long long)json_integer_value(delay))
                    : -1;
        if (n <= 0 || hr_delay_parse(text, (size_t)n, now, &out->deliver_at_ms) != 0)
            return fail(err, err_size, "\"delay\" is whole ms, at most 30 days");
    }
    return 0;
}

int hr_pub_body_parse_json(const char *body, size_t len, hr_pub_body_t *out, char *err,
                           size_t err_size)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        snprintf(err, err_size, "bad JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return -1;
    }
    int rc = hr_pub_body_from_json(root, out, err, err_size);
    out->json = root;
    return rc;
}

int hr_pub_body_from_json(json_t *root, hr_pub_body_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(root)) return fail(err, err_size, "JSON body must be an object");

    json_t *event = json_object_get(root, "event");
    if (event && !json_is_null(event)) {
        if (!json_is_string(event) ||
            !hr_event_name_valid(json_string_value(event), json_string_length(event)))
            return fail(err, err_size,
                        "\"event\" must be a string of 1-128 bytes without control characters");
        out->event = json_string_value(event);
        out->event_len = json_string_length(event);
    }
    json_t *data = json_object_get(root, "data");
    if (!data) return fail(err, err_size, "\"data\" is required");
    if (json_is_string(data)) {
        out->data = json_string_value(data);
        out->data_len = json_string_length(data);
    } else {
        out->data_json = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!out->data_json) return fail(err, err_size, "out of memory");
        out->data = out->data_json;
        out->data_len = strlen(out->data_json);
    }
    json_t *id = json_object_get(root, "id");
    if (id && !json_is_null(id) && parse_id(id, &out->want_id) != 0)
        return fail(err, err_size,
                    "\"id\" must be an integer in 1..9006099743113215 (2^53 - 1 - 2^40), or its "
                    "decimal string");
    if (push_options(root, out, err, err_size) != 0) return -1;
    json_t *retry = json_object_get(root, "retry");
    if (retry && !json_is_null(retry)) {
        if (!json_is_integer(retry) || json_integer_value(retry) < 1 ||
            json_integer_value(retry) > 86400000)
            return fail(err, err_size, "\"retry\" must be an integer of ms in 1..86400000");
        out->retry_ms = (uint32_t)json_integer_value(retry);
    }
    return 0;
}

void hr_pub_body_free(hr_pub_body_t *body)
{
    json_decref(body->json);
    free(body->data_json);
    memset(body, 0, sizeof *body);
}
