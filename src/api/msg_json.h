/* A message as JSON: {"id","topic","event","data","time"}. Data that is not valid UTF-8 is
 * binary and travels as "data_b64" (standard base64) instead of "data". */
#ifndef HR_MSG_JSON_H
#define HR_MSG_JSON_H

#include <jansson.h>

#include "core/msg.h"

json_t *hr_msg_to_json(const hr_msg_t *msg);

#endif
