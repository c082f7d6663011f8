/* The FCM HTTP v1 client; see fcm.h. libcurl's multi interface on the client's own libuv loop
 * (core/curl_uv.h). */
#include <curl/curl.h>
#include <jwt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "core/clock.h"
#include "core/curl_uv.h"
#include "core/list.h"
#include "core/log.h"
#include "push/fcm.h"

#define SCOPE "https://www.googleapis.com/auth/firebase.messaging"

typedef struct job_s {
    hr_list_t link;
    char *token, *user, *body;
    unsigned attempts;
    int64_t due_ms; /* monotonic: when a retry may go */
} job_t;

typedef struct dead_s {
    int64_t time_ms;
    char user[64], token[48];
    long status;
    char reason[96];
    unsigned attempts;
} dead_t;

/* One transfer: a push, or the access-token request (job NULL). */
typedef struct transfer_s {
    hr_list_t link; /* in fcm->transfers */
    hr_fcm_t *fcm;
    job_t *job;
    CURL *easy;
    struct curl_slist *headers;
    char *request;
    char *response;
    size_t response_len;
    int64_t retry_after_ms;
} transfer_t;

struct hr_fcm_s {
    hr_fcm_config_t config;
    hr_devices_t *devices;
    char project[256], email[256], token_uri[512], send_url[1024];
    char *private_key;

    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_timer_t retry_timer;
    hr_curl_uv_t curl;
    int started;

    pthread_mutex_t lock; /* incoming, stopping, dead, stats */
    hr_list_t incoming;
    size_t nincoming;
    int stopping;
    dead_t dead[HR_FCM_DEAD_KEEP];
    uint64_t ndead;

    /* loop thread only */
    hr_list_t ready, waiting; /* waiting: retries, by due time */
    hr_list_t transfers;      /* in flight */
    size_t in_flight;
    char access_token[2048];
    int64_t token_expires_ms; /* monotonic */
    int fetching_token;       /* 1: a token request in flight; 2: waiting out a failed one */

    atomic_uint_fast64_t sent, delivered, invalid, retried, token_fetches;
    atomic_size_t queued, flying;
};

/* ---- credentials ------------------------------------------------------------------------ */

static int read_credentials(hr_fcm_t *fcm, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(fcm->config.credentials, 0, &jerr);
    const char *project = json_string_value(json_object_get(root, "project_id"));
    const char *email = json_string_value(json_object_get(root, "client_email"));
    const char *key = json_string_value(json_object_get(root, "private_key"));
    const char *uri = json_string_value(json_object_get(root, "token_uri"));
    if (!root || !project || !email || !key) {
        snprintf(err, err_size, "%s: %s", fcm->config.credentials,
                 root ? "needs project_id, client_email and private_key" : jerr.text);
        json_decref(root);
        return -1;
    }
    snprintf(fcm->project, sizeof fcm->project, "%s", project);
    snprintf(fcm->email, sizeof fcm->email, "%s", email);
    snprintf(fcm->token_uri, sizeof fcm->token_uri, "%s",
             uri ? uri : "https://oauth2.googleapis.com/token");
    fcm->private_key = strdup(key);
    json_decref(root);
    snprintf(fcm->send_url, sizeof fcm->send_url, "%s/v1/projects/%s/messages:send",
             fcm->config.endpoint, fcm->project);
    return fcm->private_key ? 0 : -1;
}

/* The JWT grant: RS256 over {iss, scope, aud, iat, exp}, signed with the account's key. */
static char *jwt_grant(hr_fcm_t *fcm)
{
    jwt_t *jwt = NULL;
    char *out = NULL;
    int64_t now = hr_clock_unix_ms() / 1000;
    if (jwt_new(&jwt) == 0 && jwt_add_grant(jwt, "iss", fcm->email) == 0 &&
        jwt_add_grant(jwt, "scope", SCOPE) == 0 && jwt_add_grant(jwt, "aud", fcm->token_uri) == 0 &&
        jwt_add_grant_int(jwt, "iat", now) == 0 && jwt_add_grant_int(jwt, "exp", now + 3600) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)fcm->private_key,
                    (int)strlen(fcm->private_key)) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

/* ---- dead letters ----------------------------------------------------------------------- */

static void job_free(job_t *job)
{
    /* a job is freed when its push is over, one way or another */
    free(job->token);
    free(job->user);
    free(job->body);
    free(job);
}

static void dead_letter(hr_fcm_t *fcm, job_t *job, long status, const char *reason)
{
    hr_warn("fcm.dead_letter", "user=%s status=%ld attempts=%u reason=\"%s\"", job->user, status,
            job->attempts, reason);
    pthread_mutex_lock(&fcm->lock);
    dead_t *dead = &fcm->dead[fcm->ndead++ % HR_FCM_DEAD_KEEP];
    dead->time_ms = hr_clock_unix_ms();
    snprintf(dead->user, sizeof dead->user, "%s", job->user);
    snprintf(dead->token, sizeof dead->token, "%.40s", job->token);
    dead->status = status;
    snprintf(dead->reason, sizeof dead->reason, "%s", reason);
    dead->attempts = job->attempts;
    pthread_mutex_unlock(&fcm->lock);
    atomic_fetch_sub(&fcm->queued, 1);
    job_free(job);
}

/* ---- transfers -------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    transfer_t *transfer = arg;
    size_t len = size * n;
    if (transfer->response_len + len > 65536) return len; /* enough to read an error */
    char *grown = realloc(transfer->response, transfer->response_len + len + 1);
    if (!grown) return 0;
    memcpy(grown + transfer->response_len, data, len);
    transfer->response = grown;
    transfer->response_len += len;
    grown[transfer->response_len] = '\0';
    return len;
}

/* Retry-After: delta-seconds (FCM sends those). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    transfer_t *transfer = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        long seconds = strtol(data + 12, NULL, 10);
        if (seconds > 0 && seconds <= 3600) transfer->retry_after_ms = seconds * 1000;
    }
    return len;
}

static transfer_t *transfer_new(hr_fcm_t *fcm, job_t *job, const char *url, char *request,
                                const char *content_type)
{
    transfer_t *transfer = calloc(1, sizeof *transfer);
    CURL *easy = transfer ? curl_easy_init() : NULL;
    if (!easy) {
        free(transfer);
        free(request);
        return NULL;
    }
    transfer->fcm = fcm;
    transfer->job = job;
    transfer->easy = easy;
    transfer->request = request;
    char header[2100];
    snprintf(header, sizeof header, "Content-Type: %s", content_type);
    transfer->headers = curl_slist_append(NULL, header);
    if (job) {
        snprintf(header, sizeof header, "Authorization: Bearer %s", fcm->access_token);
        transfer->headers = curl_slist_append(transfer->headers, header);
    }
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, transfer);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)fcm->config.timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_multi_add_handle(fcm->curl.multi, easy);
    hr_list_push(&fcm->transfers, &transfer->link);
    fcm->in_flight++;
    atomic_store(&fcm->flying, fcm->in_flight);
    return transfer;
}

static void transfer_free(transfer_t *transfer)
{
    hr_fcm_t *fcm = transfer->fcm;
    hr_list_remove(&transfer->link);
    curl_multi_remove_handle(fcm->curl.multi, transfer->easy);
    curl_easy_cleanup(transfer->easy);
    curl_slist_free_all(transfer->headers);
    free(transfer->request);
    free(transfer->response);
    free(transfer);
    fcm->in_flight--;
    atomic_store(&fcm->flying, fcm->in_flight);
}

/* ---- scheduling ------------------------------------------------------------------------- */

static void pump(hr_fcm_t *fcm);

static void fetch_token(hr_fcm_t *fcm)
{
    char *grant = jwt_grant(fcm);
    char *form = grant ? malloc(strlen(grant) + 128) : NULL;
    if (form)
        sprintf(form,
                "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                "&assertion=%s",
                grant);
    free(grant);
    if (!form) {
        hr_error("fcm.token_failed", "reason=\"cannot sign the grant\"");
        return;
    }
    if (transfer_new(fcm, NULL, fcm->token_uri, form, "application/x-www-form-urlencoded")) {
        fcm->fetching_token = 1;
        atomic_fetch_add(&fcm->token_fetches, 1);
    }
}

static int64_t backoff(hr_fcm_t *fcm, unsigned attempts, int64_t retry_after_ms)
{
    if (retry_after_ms > 0) return retry_after_ms;
    unsigned shift = attempts > 7 ? 6 : attempts - 1;
    int64_t ceiling = fcm->config.backoff_ms << shift;
    /* Equal jitter: at least half the step, so retries spread without bunching at zero. */
    return ceiling / 2 + (int64_t)((uint64_t)rand() % (uint64_t)(ceiling / 2 + 1));
}

static void retry_later(hr_fcm_t *fcm, job_t *job, long status, const char *reason,
                        int64_t retry_after_ms)
{
    if (job->attempts > fcm->config.retries) {
        dead_letter(fcm, job, status, reason);
        return;
    }
    atomic_fetch_add(&fcm->retried, 1);
    job->due_ms = hr_clock_mono_ms() + backoff(fcm, job->attempts, retry_after_ms);
    hr_debug("fcm.retry", "user=%s status=%ld attempt=%u in_ms=%lld", job->user, status,
             job->attempts, (long long)(job->due_ms - hr_clock_mono_ms()));
    hr_list_t *at = fcm->waiting.prev; /* keep `waiting` in due order */
    while (at != &fcm->waiting && hr_container_of(at, job_t, link)->due_ms > job->due_ms)
        at = at->prev;
    hr_list_push(at->next, &job->link);
}

static void on_retry_timer(uv_timer_t *timer)
{
    hr_fcm_t *fcm = timer->data;
    if (fcm->fetching_token == 2) fcm->fetching_token = 0; /* the token's backoff is over */
    pump(fcm);
}

/* Starts what may start: the token first, then pushes up to the concurrency bound. */
static void pump(hr_fcm_t *fcm)
{
    int64_t now = hr_clock_mono_ms();
    while (!hr_list_empty(&fcm->waiting)) {
        job_t *job = hr_container_of(fcm->waiting.next, job_t, link);
        if (job->due_ms > now) break;
        hr_list_remove(&job->link);
        hr_list_push(&fcm->ready, &job->link);
    }
    if (!hr_list_empty(&fcm->waiting))
        uv_timer_start(&fcm->retry_timer, on_retry_timer,
                       (uint64_t)(hr_container_of(fcm->waiting.next, job_t, link)->due_ms - now),
                       0);
    if (hr_list_empty(&fcm->ready)) return;
    if (!fcm->access_token[0] || now > fcm->token_expires_ms) {
        if (!fcm->fetching_token) fetch_token(fcm);
        return;
    }
    while (!hr_list_empty(&fcm->ready) && fcm->in_flight < fcm->config.concurrency) {
        job_t *job = hr_container_of(fcm->ready.next, job_t, link);
        hr_list_remove(&job->link);
        job->attempts++;
        char *body = strdup(job->body);
        if (!body || !transfer_new(fcm, job, fcm->send_url, body, "application/json")) {
            retry_later(fcm, job, 0, "out of memory", 0);
            continue;
        }
        atomic_fetch_add(&fcm->sent, 1);
    }
}

/* ---- outcomes --------------------------------------------------------------------------- */

static void token_done(hr_fcm_t *fcm, transfer_t *transfer, CURLcode result, long status)
{
    fcm->fetching_token = 0;
    json_t *reply = transfer->response ? json_loads(transfer->response, 0, NULL) : NULL;
    const char *token = json_string_value(json_object_get(reply, "access_token"));
    json_int_t expires = json_integer_value(json_object_get(reply, "expires_in"));
    if (result == CURLE_OK && status == 200 && token && strlen(token) < sizeof fcm->access_token) {
        snprintf(fcm->access_token, sizeof fcm->access_token, "%s", token);
        /* Renewed a minute early, so no push goes out with a token about to lapse. */
        int64_t life_ms = (expires > 120 ? expires - 60 : 60) * 1000;
        fcm->token_expires_ms = hr_clock_mono_ms() + life_ms;
        hr_info("fcm.token", "expires_in=%lld", (long long)expires);
    } else {
        hr_error("fcm.token_failed", "status=%ld curl=\"%s\" reply=\"%.200s\"", status,
                 curl_easy_strerror(result), transfer->response ? transfer->response : "");
        /* Try again after a backoff step; pushes wait (and time out into retries, if long). */
        fcm->token_expires_ms = 0;
        uv_timer_start(&fcm->retry_timer, on_retry_timer, (uint64_t)fcm->config.backoff_ms, 0);
        fcm->fetching_token = 2; /* until the timer: not again at once */
    }
    json_decref(reply);
}

/* An error answer names the token as the problem: UNREGISTERED, or INVALID_ARGUMENT about the
 * token field (FCM's fieldViolations / message say so). */
static int token_rejected(long status, const char *response)
{
    if (!response) return status == 404;
    if (strstr(response, "UNREGISTERED")) return 1;
    return status == 400 && strstr(response, "INVALID_ARGUMENT") && strstr(response, "token");
}

static void push_done(hr_fcm_t *fcm, transfer_t *transfer, CURLcode result, long status)
{
    job_t *job = transfer->job;
    if (result != CURLE_OK) {
        retry_later(fcm, job, 0, curl_easy_strerror(result), 0);
    } else if (status == 200) {
        atomic_fetch_add(&fcm->delivered, 1);
        atomic_fetch_sub(&fcm->queued, 1);
        job_free(job);
    } else if ((status == 404 || status == 400) && token_rejected(status, transfer->response)) {
        hr_info("fcm.token_removed", "user=%s status=%ld", job->user, status);
        hr_devices_invalid(fcm->devices, job->token, strlen(job->token));
        atomic_fetch_add(&fcm->invalid, 1);
        atomic_fetch_sub(&fcm->queued, 1);
        job_free(job);
    } else if (status == 401) { /* the access token went stale: a new one, then again */
        fcm->access_token[0] = '\0';
        retry_later(fcm, job, status, "unauthorized", 1);
    } else if (status == 429 || status >= 500) {
        retry_later(fcm, job, status, status == 429 ? "quota exceeded" : "server error",
                    transfer->retry_after_ms);
    } else {
        char reason[96];
        snprintf(reason, sizeof reason, "%.90s", transfer->response ? transfer->response : "");
        dead_letter(fcm, job, status, reason);
    }
}

static void transfer_done(hr_curl_uv_t *curl, CURL *easy, CURLcode result)
{
    hr_fcm_t *fcm = curl->user;
    transfer_t *transfer;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&transfer);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (transfer->job)
        push_done(fcm, transfer, result, status);
    else
        token_done(fcm, transfer, result, status);
    transfer_free(transfer);
}

static void after_batch(hr_curl_uv_t *curl)
{
    pump(curl->user);
}

/* ---- thread ----------------------------------------------------------------------------- */

static void on_wake(uv_async_t *async)
{
    hr_fcm_t *fcm = async->data;
    pthread_mutex_lock(&fcm->lock);
    int stopping = fcm->stopping;
    while (!hr_list_empty(&fcm->incoming)) {
        hr_list_t *it = fcm->incoming.next;
        hr_list_remove(it);
        hr_list_push(&fcm->ready, it);
    }
    fcm->nincoming = 0;
    pthread_mutex_unlock(&fcm->lock);
    if (!stopping) {
        pump(fcm);
        return;
    }
    /* Transfers in flight are abandoned; removing them lets curl close their sockets (and
     * their polls) before the loop's handles go. */
    while (!hr_list_empty(&fcm->transfers)) {
        transfer_t *transfer = hr_container_of(fcm->transfers.next, transfer_t, link);
        if (transfer->job) job_free(transfer->job);
        transfer_free(transfer);
    }
    hr_curl_uv_cleanup(&fcm->curl);
    uv_walk(&fcm->loop, hr_curl_uv_close_handle, NULL);
}

static void fcm_thread(void *arg)
{
    hr_fcm_t *fcm = arg;
    uv_run(&fcm->loop, UV_RUN_DEFAULT);
}

hr_fcm_t *hr_fcm_new(const hr_fcm_config_t *config, hr_devices_t *devices, char *err,
                     size_t err_size)
{
    hr_fcm_t *fcm = calloc(1, sizeof *fcm);
    if (!fcm) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    fcm->config = *config;
    fcm->devices = devices;
    pthread_mutex_init(&fcm->lock, NULL);
    hr_list_init(&fcm->incoming);
    hr_list_init(&fcm->ready);
    hr_list_init(&fcm->waiting);
    hr_list_init(&fcm->transfers);
    if (read_credentials(fcm, err, err_size) != 0) {
        hr_fcm_free(fcm);
        return NULL;
    }
    return fcm;
}

int hr_fcm_start(hr_fcm_t *fcm)
{
    if (uv_loop_init(&fcm->loop) != 0 || hr_curl_uv_init(&fcm->curl, &fcm->loop) != 0) return -1;
    fcm->curl.done = transfer_done;
    fcm->curl.after = after_batch;
    fcm->curl.user = fcm;
    uv_async_init(&fcm->loop, &fcm->wake, on_wake);
    fcm->wake.data = fcm;
    uv_timer_init(&fcm->loop, &fcm->retry_timer);
    fcm->retry_timer.data = fcm;
    curl_multi_setopt(fcm->curl.multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)fcm->config.concurrency);
    fcm->started = 1;
    return uv_thread_create(&fcm->thread, fcm_thread, fcm) == 0 ? 0 : -1;
}

static void free_jobs(hr_list_t *list)
{
    while (!hr_list_empty(list)) {
        job_t *job = hr_container_of(list->next, job_t, link);
        hr_list_remove(&job->link);
        job_free(job);
    }
}

void hr_fcm_free(hr_fcm_t *fcm)
{
    if (!fcm) return;
    if (fcm->started) {
        pthread_mutex_lock(&fcm->lock);
        fcm->stopping = 1;
        pthread_mutex_unlock(&fcm->lock);
        uv_async_send(&fcm->wake);
        uv_thread_join(&fcm->thread);
        uv_loop_close(&fcm->loop);
    }
    free_jobs(&fcm->incoming);
    free_jobs(&fcm->ready);
    free_jobs(&fcm->waiting);
    free(fcm->private_key);
    pthread_mutex_destroy(&fcm->lock);
    free(fcm);
}

void hr_fcm_send(hr_fcm_t *fcm, const char *token, const char *user, char *body)
{
    job_t *job = calloc(1, sizeof *job);
    if (job) {
        job->token = strdup(token);
        job->user = strdup(user);
        job->body = body;
    }
    if (!job || !job->token || !job->user) {
        if (job)
            job_free(job);
        else
            free(body);
        hr_error("fcm.oom", "user=%s", user);
        return;
    }
    atomic_fetch_add(&fcm->queued, 1);
    pthread_mutex_lock(&fcm->lock);
    int full = fcm->nincoming >= HR_FCM_QUEUE_MAX || atomic_load(&fcm->queued) > HR_FCM_QUEUE_MAX;
    if (!full) {
        hr_list_push(&fcm->incoming, &job->link);
        if (fcm->nincoming++ == 0) uv_async_send(&fcm->wake);
    }
    pthread_mutex_unlock(&fcm->lock);
    if (full) dead_letter(fcm, job, 0, "queue_full");
}

void hr_fcm_stats(hr_fcm_t *fcm, hr_fcm_stats_t *stats)
{
    stats->sent = atomic_load(&fcm->sent);
    stats->delivered = atomic_load(&fcm->delivered);
    stats->invalid = atomic_load(&fcm->invalid);
    stats->retried = atomic_load(&fcm->retried);
    stats->token_fetches = atomic_load(&fcm->token_fetches);
    stats->queued = atomic_load(&fcm->queued);
    stats->in_flight = atomic_load(&fcm->flying);
    pthread_mutex_lock(&fcm->lock);
    stats->dead = fcm->ndead;
    pthread_mutex_unlock(&fcm->lock);
}

json_t *hr_fcm_dead(hr_fcm_t *fcm)
{
    json_t *list = json_array();
    pthread_mutex_lock(&fcm->lock);
    uint64_t first = fcm->ndead > HR_FCM_DEAD_KEEP ? fcm->ndead - HR_FCM_DEAD_KEEP : 0;
    for (uint64_t i = first; i < fcm->ndead; i++) {
        const dead_t *dead = &fcm->dead[i % HR_FCM_DEAD_KEEP];
        json_array_append_new(list,
                              json_pack("{s:I, s:s, s:s, s:I, s:s, s:i}", "time",
                                        (json_int_t)dead->time_ms, "user", dead->user, "token",
                                        dead->token, "status", (json_int_t)dead->status, "reason",
                                        dead->reason, "attempts", (int)dead->attempts));
    }
    pthread_mutex_unlock(&fcm->lock);
    return list;
}
