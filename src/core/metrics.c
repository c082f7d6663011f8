/* Counters and histograms; see metrics.h. */
#include "core/metrics.h"

const double hr_histogram_bounds[HR_HISTOGRAM_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

const int hr_refusal_codes[HR_REF_KINDS] = {400, 401, 403, 404, 405, 408, 409, 413,
                                            415, 429, 431, 502, 503, 504, 507, 0};

const char *const hr_h2_error_names[HR_H2_ERRORS] = {"no_error",
                                                     "protocol_error",
                                                     "flow_control_error",
                                                     "compression_error",
                                                     "internal_error",
                                                     "enhance_your_calm",
                                                     "other"};

void hr_histogram_observe(hr_histogram_t *histogram, uint64_t ns)
{
    double seconds = (double)ns / 1e9;
    for (int i = 0; i < HR_HISTOGRAM_BUCKETS; i++) {
        if (seconds <= hr_histogram_bounds[i]) {
            atomic_fetch_add_explicit(&histogram->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&histogram->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&histogram->sum_ns, ns, memory_order_relaxed);
}

void hr_metrics_refused(hr_metrics_t *metrics, int status)
{
    int kind = HR_REF_OTHER;
    for (int i = 0; i < HR_REF_OTHER; i++)
        if (hr_refusal_codes[i] == status) kind = i;
    atomic_fetch_add_explicit(&metrics->refusals[kind], 1, memory_order_relaxed);
}
