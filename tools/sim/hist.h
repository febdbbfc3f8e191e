/*
 * hist.h - a fixed-size log-linear latency histogram in the HdrHistogram
 * shape: values 1 us .. 60 s, 3 significant digits (relative bucket width at
 * most 1/1024).  Values below 2048 have their own bucket; above, each power
 * of two is split into 1024 linear sub-buckets.  Recording is O(1) and never
 * allocates (the counts live inside the struct, about 150 KB: embed it or
 * allocate it once per run, not per request).
 */
#ifndef CARDGATE_SIM_HIST_H
#define CARDGATE_SIM_HIST_H

#include <stdint.h>

#define HIST_MIN_US   1
#define HIST_MAX_US   60000000 /* 60 s */
#define HIST_SUB_BITS 11       /* 2048 exact values, then 1024 per octave */
#define HIST_SUB      (1 << HIST_SUB_BITS)
#define HIST_HALF     (HIST_SUB / 2)
#define HIST_OCTAVES  16 /* 2048 << 15 > 60e6 */
#define HIST_NBUCKETS (HIST_SUB + HIST_OCTAVES * HIST_HALF)

struct hist {
    uint64_t total;
    uint64_t clamped; /* values outside 1 us .. 60 s, recorded at the nearest end */
    int64_t min;
    int64_t max;
    uint64_t counts[HIST_NBUCKETS];
};

/* Empty the histogram. */
void hist_reset(struct hist *h);
/* Record one value in microseconds; out-of-range values are clamped and counted. */
void hist_record(struct hist *h, int64_t us);
/* Add every count of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/*
 * The value at percentile p (0 < p <= 100): the highest value equivalent to
 * the bucket holding the ceil(p% of total)-th smallest sample, capped at the
 * recorded max.  0 when empty.
 */
int64_t hist_percentile(const struct hist *h, double p);
/* Bucket index of a value already within range (exposed for tests). */
unsigned hist_index(int64_t us);
/* Lowest and highest value held by bucket i. */
int64_t hist_bucket_low(unsigned i);
int64_t hist_bucket_high(unsigned i);

#endif
