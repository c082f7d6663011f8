/* libFuzzer target: HTTP/1.1 request reading (http_parser plus herald's limits, token
 * assembly and pausing), fed in pieces whose sizes come from the first byte, then the query
 * string of each complete request. */
#include <stdint.h>
#include <stdlib.h>

#include "http/query.h"
#include "http/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t step = (size_t)(data[0] % 64) + 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1, at = 0;
    hr_reqparser_t rp;
    hr_reqparser_init(&rp, 4096, 4096);
    while (at < len) {
        size_t chunk = len - at < step ? len - at : step, used;
        enum hr_parse_result result = hr_reqparser_feed(&rp, text + at, chunk, &used);
        at += used;
        if (result == HR_PARSE_ERROR) break;
        if (result == HR_PARSE_READY) {
            hr_request_t *req = hr_reqparser_take(&rp);
            (void)hr_request_header(req, "Content-Type", NULL);
            if (req->query) {
                char *buf = malloc(req->query_len * 2 + 2);
                hr_qparam_t params[32];
                if (buf) hr_query_parse(req->query, req->query_len, buf, params, 32);
                free(buf);
            }
            hr_request_free(req);
            continue;
        }
        if (used == 0 && chunk == len - at) break;
    }
    hr_reqparser_reset(&rp);
    return 0;
}
