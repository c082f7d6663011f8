/* The FCM HTTP v1 client (docs/PUSH.md): its own thread and libuv loop driving libcurl's multi
 * interface, so a slow or dead FCM never touches a worker. An OAuth2 access token from a Google
 * service account (an RS256-signed JWT grant to its token_uri, cached until a minute before it
 * expires); `messages:send` per device with bounded concurrency; outcomes: 200 delivered, an
 * unregistered or invalid token removes the device, 401 refreshes the access token, 429 and
 * 5xx (and network errors) retry with exponential backoff and jitter, honouring Retry-After, at
 * most --fcm-retries times, then the push is dead-lettered (a log line, a counter, and
 * GET /v1/fcm/dead). */
#ifndef HR_PUSH_FCM_H
#define HR_PUSH_FCM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "push/devices.h"

#define HR_FCM_QUEUE_MAX 200000 /* pushes waiting; more are dead-lettered (queue_full) */
#define HR_FCM_DEAD_KEEP 256    /* dead letters kept for GET /v1/fcm/dead */

typedef struct hr_fcm_s hr_fcm_t;

typedef struct hr_fcm_config_s {
    const char *credentials; /* service-account JSON file */
    const char *endpoint;    /* FCM base URL, e.g. https://fcm.googleapis.com */
    unsigned retries;
    unsigned concurrency;
    int64_t backoff_ms; /* first retry's delay; doubles, capped at 64x */
    int64_t timeout_ms; /* one request */
} hr_fcm_config_t;

/* Reads the credentials (project_id, client_email, private_key, token_uri). NULL with why. */
hr_fcm_t *hr_fcm_new(const hr_fcm_config_t *config, hr_devices_t *devices, char *err,
                     size_t err_size);
int hr_fcm_start(hr_fcm_t *fcm);
/* Stops the thread (pushes in flight are abandoned) and frees. */
void hr_fcm_free(hr_fcm_t *fcm);

/* Queues one push. `body` is the request's JSON text ({"message":{"token":...}}), owned by
 * the client from now on. Any thread. */
void hr_fcm_send(hr_fcm_t *fcm, const char *token, const char *user, char *body);

typedef struct hr_fcm_stats_s {
    uint64_t sent, delivered, invalid, retried, dead, token_fetches;
    size_t queued, in_flight;
} hr_fcm_stats_t;
void hr_fcm_stats(hr_fcm_t *fcm, hr_fcm_stats_t *stats);
/* [{"time","user","token","status","reason","attempts"}], newest last. */
json_t *hr_fcm_dead(hr_fcm_t *fcm);

#endif
