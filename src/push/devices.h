/* Device tokens (docs/PUSH.md): which devices each user has for FCM, and which topics each
 * device wants pushes for. In memory, under one mutex, with every change written through to the
 * store (SQLite) when it keeps devices, and loaded from it at start.
 *
 * Bounds: HR_DEVICES_PER_USER per user (the oldest is replaced), --fcm-max-devices and
 * --fcm-max-device-bytes in all (507 above), HR_DEVICE_TOPICS topics per device; tokens are 1..4096 bytes of the base64url and
 * ':' alphabet FCM uses. */
#ifndef HR_PUSH_DEVICES_H
#define HR_PUSH_DEVICES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define HR_DEVICES_PER_USER  16
#define HR_DEVICE_TOPICS     32
#define HR_DEVICE_TOKEN_MAX  4096
#define HR_DEVICE_APP_ID_MAX 128
#define HR_DEVICE_LABELS_MAX 1024 /* serialised */

typedef struct hr_devices_s hr_devices_t;

/* One device as the API and the store see it. */
typedef struct hr_device_info_s {
    const char *token, *user;
    size_t token_len, user_len;
    char platform[16]; /* android, ios, web */
    char app_id[HR_DEVICE_APP_ID_MAX + 1];
    json_t *topics; /* array of topic names (borrowed) */
    json_t *labels; /* object or NULL (borrowed) */
    int64_t updated_ms;
} hr_device_info_t;

hr_devices_t *hr_devices_new(hr_store_t *store, size_t max_devices, size_t max_bytes);
void hr_devices_free(hr_devices_t *devices);

int hr_device_token_valid(const char *token, size_t len);
/* Reads and checks a PUT body {"platform","app_id","topics","labels"} into info (borrowing from
 * body). 0, or -1 with why in err. */
int hr_device_body_parse(json_t *body, hr_device_info_t *info, char *err, size_t err_size);

/* Registers or refreshes; a token registered to another user moves to this one. Returns 0,
 * HR_ELIMIT (--fcm-max-devices reached), HR_ENOMEM. */
int hr_devices_put(hr_devices_t *devices, const hr_device_info_t *info);
/* Returns 1 when it was there (of this user, or of anyone when user is NULL). */
int hr_devices_remove(hr_devices_t *devices, const char *user, size_t user_len, const char *token,
                      size_t token_len);
/* [{"token","platform","app_id","topics","labels","updated_at"}] */
json_t *hr_devices_list(hr_devices_t *devices, const char *user, size_t len);

/* A device to push to, copied out of the registry. */
typedef struct hr_push_target_s {
    char *token; /* owned */
    char user[128];
    char platform[16];
} hr_push_target_t;

/* The devices of `user`, or of every user with a device that wants `topic`: appended to *out
 * (grown as needed), at most `max` in all. Returns how many were added. */
size_t hr_devices_of_user(hr_devices_t *devices, const char *user, size_t len,
                          hr_push_target_t **out, size_t *n, size_t *cap, size_t max);
size_t hr_devices_of_topic(hr_devices_t *devices, const char *topic, size_t len,
                           hr_push_target_t **out, size_t *n, size_t *cap, size_t max);
void hr_push_targets_free(hr_push_target_t *targets, size_t n);

/* Removes devices not refreshed since before `cutoff_ms` (unix); returns how many. */
size_t hr_devices_expire(hr_devices_t *devices, int64_t cutoff_ms);

typedef struct hr_devices_stats_s {
    size_t live, users;
    size_t stale;                            /* not refreshed since stale_before_ms */
    uint64_t removed_stale, removed_invalid; /* by the TTL job, by FCM's answer */
} hr_devices_stats_t;
/* stale: devices not refreshed since stale_before_ms (unix), still registered. */
void hr_devices_stats(hr_devices_t *devices, int64_t stale_before_ms, hr_devices_stats_t *stats);
/* Start-up: the store's devices, least recently refreshed first. */
int hr_devices_load(hr_devices_t *devices);
/* Cluster mode: where an invalid token is removed instead (Redis). */
void hr_devices_on_invalid(hr_devices_t *devices,
                           void (*fn)(void *arg, const char *token, size_t len), void *arg);
/* FCM said the token is no longer valid. */
void hr_devices_invalid(hr_devices_t *devices, const char *token, size_t len);

#endif
