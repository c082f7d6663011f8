#include <stdlib.h>

#include "api/msg_json.h"
#include "core/base64.h"

json_t *hr_msg_to_json(const hr_msg_t *msg)
{
    json_t *obj = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)msg->id, "topic", msg->topic_name,
                            "time", (json_int_t)msg->time_ms);
    if (!obj) return NULL;
    if (msg->event[0]) json_object_set_new(obj, "event", json_string(msg->event));
    json_t *data = msg->binary ? NULL : json_stringn(msg->data, msg->data_len);
    if (data) {
        json_object_set_new(obj, "data", data);
        return obj;
    }
    char *b64 = malloc(HR_BASE64_LEN(msg->data_len) + 1);
    if (!b64) {
        json_decref(obj);
        return NULL;
    }
    size_t len = hr_base64_encode((const unsigned char *)msg->data, msg->data_len, b64);
    json_object_set_new(obj, "data_b64", json_stringn(b64, len));
    free(b64);
    return obj;
}
