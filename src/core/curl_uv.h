/* libcurl's multi interface driven by a libuv loop: curl says which sockets to watch and when
 * to time out, uv_poll and a uv_timer report back, and every finished transfer is handed to
 * `done`. Shared by the FCM client (src/push) and the pools' upstream calls (src/pool), each on
 * its own thread and loop. Loop thread only. */
#ifndef HR_CURL_UV_H
#define HR_CURL_UV_H

#include <curl/curl.h>
#include <uv.h>

typedef struct hr_curl_uv_s hr_curl_uv_t;
struct hr_curl_uv_s {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    /* Set by the user: one finished transfer (the user removes and cleans `easy`), then, once
     * a batch is over, `after` (start what may start now; may be NULL). */
    void (*done)(hr_curl_uv_t *curl, CURL *easy, CURLcode result);
    void (*after)(hr_curl_uv_t *curl);
    void *user;
};

/* curl_global_init is the caller's (once per process, before threads). */
int hr_curl_uv_init(hr_curl_uv_t *curl, uv_loop_t *loop);
/* Cleans the multi handle (remove the transfers first: their sockets' polls then close). */
void hr_curl_uv_cleanup(hr_curl_uv_t *curl);
/* For uv_walk at shutdown: closes any handle, with the right free for curl's socket polls. */
void hr_curl_uv_close_handle(uv_handle_t *handle, void *arg);

#endif
