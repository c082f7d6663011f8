/* The broker's view of a subscriber and of the transport serving it. The broker calls
 * transports only through hr_transport_t and never includes a transport header; each transport
 * file ends with one `const hr_transport_t`. */
#ifndef HR_SUB_H
#define HR_SUB_H

#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/msg.h"

typedef struct hr_sub_s hr_sub_t;

typedef struct hr_transport_s {
    const char *name;
    /* Frame and queue `msg` for this subscriber. Never blocks, never frees the subscriber; on
     * failure the transport schedules its own close. Returns 0 or a negative error. */
    int (*deliver)(hr_sub_t *sub, hr_msg_t *msg);
    /* The server ends this subscription (admin disconnect, shutdown): end the stream cleanly so
     * the client reconnects and resumes. */
    void (*kick)(hr_sub_t *sub);
    /* Keep an idle subscriber's path warm (SSE comment, WebSocket ping). */
    void (*heartbeat)(hr_sub_t *sub);
} hr_transport_t;

/* One membership of a subscriber in one topic's per-worker list. */
typedef struct hr_subnode_s {
    hr_list_t link;    /* in topic->local[worker] */
    hr_sub_t *sub;     /* back pointer */
    hr_topic_t *topic; /* holds a topic reference while linked */
} hr_subnode_t;

struct hr_sub_s {
    const hr_transport_t *vt; /* how to reach this subscriber */
    void *owner;              /* the transport's object (a connection), opaque to the broker */
    uint64_t last_id;         /* highest id delivered or skipped: later ids only, no duplicates */
    hr_subnode_t *nodes;      /* one per topic, owned by the broker between (un)subscribe */
    size_t nnodes;            /* topics subscribed */
    unsigned worker;          /* the worker whose thread owns this subscriber */
    hr_list_t worker_link;    /* in the worker's list of live subscribers (heartbeat, shutdown) */
};

#endif
