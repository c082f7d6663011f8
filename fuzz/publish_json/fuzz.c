/* libFuzzer target: publish bodies as JSON ({"event","data","id","retry"}), through the same
 * parser HTTP and WebSocket publishes use. Whatever the input, the parser returns 0 or -1 with
 * a message; on 0 the fields it hands back must be what a publish may carry. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/publish_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hr_pub_body_t body;
    char err[256];
    err[0] = '\0';
    int rc = hr_pub_body_parse_json((const char *)data, size, &body, err, sizeof err);
    if (rc == 0) {
        if (!body.data) abort();
        if (body.event && !hr_event_name_valid(body.event, body.event_len)) abort();
        volatile size_t sum = 0; /* touch every byte: ASan checks the lengths */
        for (size_t i = 0; i < body.data_len; i++)
            sum += (unsigned char)body.data[i];
        for (size_t i = 0; body.event && i < body.event_len; i++)
            sum += (unsigned char)body.event[i];
        (void)sum;
    } else if (rc != -1 || err[0] == '\0') {
        abort(); /* an error always says why */
    }
    hr_pub_body_free(&body);
    return 0;
}
