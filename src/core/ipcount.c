#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/ipcount.h"

#define NSLOTS 4096

typedef struct entry_s entry_t;
struct entry_s {
    entry_t *next;
    size_t count, len;
    char ip[];
};

struct hr_ipcount_s {
    pthread_mutex_t lock;
    entry_t *slots[NSLOTS];
};

hr_ipcount_t *hr_ipcount_new(void)
{
    hr_ipcount_t *counts = calloc(1, sizeof *counts);
    if (counts) pthread_mutex_init(&counts->lock, NULL);
    return counts;
}

void hr_ipcount_free(hr_ipcount_t *counts)
{
    if (!counts) return;
    for (size_t i = 0; i < NSLOTS; i++) {
        for (entry_t *entry = counts->slots[i], *next; entry; entry = next) {
            next = entry->next;
            free(entry);
        }
    }
    pthread_mutex_destroy(&counts->lock);
    free(counts);
}

static entry_t **find(hr_ipcount_t *counts, const char *ip, size_t len)
{
    entry_t **link = &counts->slots[hr_hash_bytes(ip, len) % NSLOTS];
    while (*link && ((*link)->len != len || memcmp((*link)->ip, ip, len) != 0))
        link = &(*link)->next;
    return link;
}

int hr_ipcount_take(hr_ipcount_t *counts, const char *ip, size_t len, size_t max)
{
    pthread_mutex_lock(&counts->lock);
    entry_t **link = find(counts, ip, len);
    int taken = 1;
    if (*link) {
        taken = (*link)->count < max;
        if (taken) (*link)->count++;
    } else {
        entry_t *entry = max ? malloc(sizeof *entry + len) : NULL;
        if (entry) {
            entry->next = NULL;
            entry->count = 1;
            entry->len = len;
            memcpy(entry->ip, ip, len);
            *link = entry;
        }
        taken = entry != NULL; /* out of memory: refused, like a full server */
    }
    pthread_mutex_unlock(&counts->lock);
    return taken;
}

void hr_ipcount_release(hr_ipcount_t *counts, const char *ip, size_t len)
{
    pthread_mutex_lock(&counts->lock);
    entry_t **link = find(counts, ip, len);
    if (*link && --(*link)->count == 0) {
        entry_t *entry = *link;
        *link = entry->next;
        free(entry);
    }
    pthread_mutex_unlock(&counts->lock);
}
