/* herald's error codes: negative errno values, so libuv's UV_E* pass through unchanged. */
#ifndef HR_ERROR_H
#define HR_ERROR_H

#include <errno.h>

#define HR_OK        0
#define HR_ENOMEM    (-ENOMEM)      /* allocation failed */
#define HR_EINVAL    (-EINVAL)      /* bad argument or input */
#define HR_EPROTO    (-EPROTO)      /* protocol violation by the peer */
#define HR_EAGAIN    (-EAGAIN)      /* partial input: call again with more */
#define HR_ECONFLICT (-EEXIST)      /* requested id not above the current one */
#define HR_ELIMIT    (-ENOSPC)      /* a configured limit was reached */
#define HR_ESHUTDOWN (-ESHUTDOWN)   /* the server is stopping */
#define HR_ENOTREADY (-EINPROGRESS) /* cluster: the topic is not live here yet; await it */
#define HR_EUNAVAIL  (-ENOTCONN)    /* cluster: the bus (Redis) is unreachable */
#define HR_EIDSPACE  (-EOVERFLOW)   /* the id sequence reached HR_ID_MAX: no publish can succeed */

/* What a client is told when --topic-limit refuses a new topic. */
#define HR_TOPIC_LIMIT_TEXT "topic limit reached (--topic-limit): no new topics until some expire"

#endif
