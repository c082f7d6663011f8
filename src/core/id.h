/* Message ids: positive 64-bit integers, unique and increasing across the whole broker, so one
 * number is a resume point for any set of topics. Written in decimal on the wire. */
#ifndef HR_ID_H
#define HR_ID_H

#include <stddef.h>
#include <stdint.h>

/* Ids stay below 2^53 so a JavaScript number, a Lua number (Redis scripts) and a JSON double
 * hold them exactly; the clock start (µs) reaches this bound in the year 2255. */
#define HR_ID_MAX 9007199254740991ull /* 2^53 - 1 */
/* A publisher may choose an id, but not so high that the sequence runs out after it: 2^40
 * ids (12 days at a million publishes a second) stay free above the highest chosen one. */
#define HR_ID_CHOSEN_MAX (HR_ID_MAX - (1ull << 40))
#define HR_ID_STR_MAX    21 /* 19 digits + NUL, with room */

/* Strict parse of a decimal id: digits only, no sign, no spaces, no leading zeros except "0",
 * at most HR_ID_MAX. Returns 0 on success, -1 otherwise. */
int hr_id_parse(const char *s, size_t len, uint64_t *out);

/* Writes the decimal form of `id` into `buf` (at least HR_ID_STR_MAX bytes); returns length. */
size_t hr_id_format(uint64_t id, char *buf);

#endif
