/* Intrusive doubly-linked list, circular with a sentinel head (the libuv QUEUE idea).
 * Embedding the link in the owner avoids one allocation per membership. */
#ifndef HR_LIST_H
#define HR_LIST_H

#include <stddef.h>

typedef struct hr_list_s {
    struct hr_list_s *next;
    struct hr_list_s *prev;
} hr_list_t;

#define hr_container_of(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

static inline void hr_list_init(hr_list_t *head)
{
    head->next = head;
    head->prev = head;
}

static inline int hr_list_empty(const hr_list_t *head)
{
    return head->next == head;
}

static inline void hr_list_push(hr_list_t *head, hr_list_t *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void hr_list_remove(hr_list_t *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node;
    node->prev = node;
}

#endif
