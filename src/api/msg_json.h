/* A message as JSON: {"id","topic","event","data","time"}. A binary message (published as
 * binary, or data that is not valid UTF-8) carries "data_b64" (standard base64) instead. */
#ifndef HR_MSG_JSON_H
#define HR_MSG_JSON_H

#include <jansson.h>

#include "core/msg.h"

json_t *hr_msg_to_json(const hr_msg_t *msg);

#endif
