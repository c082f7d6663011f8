/* Counters and histograms for GET /metrics (api/metrics.c renders them in the Prometheus text
 * format). Lock-free: relaxed atomics, bumped from any thread; a scrape reads each once, so a
 * histogram's count and buckets may be a few observations apart, as Prometheus allows. */
#ifndef HR_METRICS_H
#define HR_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#define HR_HISTOGRAM_BUCKETS 16

/* Upper bounds in seconds: 100 µs to 10 s; +Inf is the count. */
extern const double hr_histogram_bounds[HR_HISTOGRAM_BUCKETS];

typedef struct hr_histogram_s {
    atomic_uint_fast64_t buckets[HR_HISTOGRAM_BUCKETS]; /* not cumulative: one per range */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns;
} hr_histogram_t;

void hr_histogram_observe(hr_histogram_t *histogram, uint64_t ns);

/* Refusals herald answers with a 4xx/5xx, by status (api: hr_respond_error). */
enum hr_refusal_status {
    HR_REF_400,
    HR_REF_401,
    HR_REF_403,
    HR_REF_404,
    HR_REF_405,
    HR_REF_408,
    HR_REF_409,
    HR_REF_413,
    HR_REF_415,
    HR_REF_429,
    HR_REF_431,
    HR_REF_502,
    HR_REF_503,
    HR_REF_504,
    HR_REF_507,
    HR_REF_OTHER,
    HR_REF_KINDS
};
extern const int hr_refusal_codes[HR_REF_KINDS]; /* 0 for OTHER */

/* HTTP/2 connection errors, by the GOAWAY's error code (or why none could be sent). */
enum hr_h2_error {
    HR_H2_NO_ERROR,          /* a clean shutdown */
    HR_H2_PROTOCOL_ERROR,    /* malformed frames, CONTINUATION flood, bad preface */
    HR_H2_FLOW_CONTROL,      /* window overflow */
    HR_H2_COMPRESSION,       /* HPACK errors */
    HR_H2_INTERNAL,          /* nghttp2's answer to rapid resets (CVE-2023-44487) */
    HR_H2_ENHANCE_YOUR_CALM, /* settings or ping floods */
    HR_H2_OTHER,
    HR_H2_ERRORS
};

typedef struct hr_metrics_s {
    hr_histogram_t publish; /* a publish request, read → answered */
    atomic_uint_fast64_t refusals[HR_REF_KINDS];
    atomic_uint_fast64_t slow_consumer_cuts;       /* --max-outbound */
    atomic_uint_fast64_t conns_refused_max;        /* --max-conns */
    atomic_uint_fast64_t conns_refused_ip;         /* --max-conns-per-ip */
    atomic_uint_fast64_t requests;                 /* HTTP requests dispatched */
    atomic_uint_fast64_t h2_conns;                 /* HTTP/2 connections opened */
    atomic_uint_fast64_t h2_streams;               /* HTTP/2 requests */
    atomic_uint_fast64_t h2_client_resets;         /* RST_STREAM received */
    atomic_uint_fast64_t h2_stream_cuts;           /* streams reset for a slow reader */
    atomic_uint_fast64_t h2_goaways[HR_H2_ERRORS]; /* GOAWAY sent, by error code */
} hr_metrics_t;

/* The GOAWAY error codes herald counts apart (RFC 9113 §7); the rest are "other". */
extern const char *const hr_h2_error_names[HR_H2_ERRORS];

void hr_metrics_refused(hr_metrics_t *metrics, int status);

#endif
