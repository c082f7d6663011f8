#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/publish_body.h"
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
