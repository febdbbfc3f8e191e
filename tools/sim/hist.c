/*
 * hist.c - log-linear latency histogram (see hist.h).
 */
#include "tools/sim/hist.h"

#include <math.h>
#include <string.h>

void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

unsigned hist_index(int64_t us)
{
    uint64_t v = (uint64_t)us;
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (HIST_SUB_BITS - 1); /* v >> shift lands in [1024, 2047] */
    return HIST_SUB + (shift - 1) * HIST_HALF + (unsigned)((v >> shift) - HIST_HALF);
}

int64_t hist_bucket_low(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = (i - HIST_SUB) / HIST_HALF + 1;
    uint64_t sub = (i - HIST_SUB) % HIST_HALF + HIST_HALF;
    return (int64_t)(sub << shift);
}

int64_t hist_bucket_high(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = (i - HIST_SUB) / HIST_HALF + 1;
    return hist_bucket_low(i) + ((int64_t)1 << shift) - 1;
}

void hist_record(struct hist *h, int64_t us)
{
    if (us < HIST_MIN_US) {
        us = HIST_MIN_US;
        h->clamped++;
    } else if (us > HIST_MAX_US) {
        us = HIST_MAX_US;
        h->clamped++;
    }
    h->counts[hist_index(us)]++;
    if (h->total == 0 || us < h->min)
        h->min = us;
    if (us > h->max)
        h->max = us;
    h->total++;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->total == 0)
        return;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (dst->total == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->total += src->total;
    dst->clamped += src->clamped;
}

int64_t hist_percentile(const struct hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p > 100.0)
        p = 100.0;
    /* the epsilon keeps 99.9% of 1000 at 999, not 1000 through rounding */
    uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->total - 1e-9);
    if (want < 1)
        want = 1;
    if (want > h->total)
        want = h->total;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            int64_t v = hist_bucket_high(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
