/*
 * bench/codec.c - ISO 8583 decode and encode throughput per dialect for a
 * typical 0100 (21 fields with EMV field 55), on one core, and heap
 * allocations per message.  Prints a table; never passes or fails on speed.
 *
 * Each figure is the median of REPS timed runs of ITERS messages.  Decode
 * includes validation (formats, lengths, TLV) and the required-field check.
 * Allocations are counted by interposing malloc/calloc/realloc in this
 * binary (not under ASan, which owns those symbols).
 */
#include "common/util.h"
#include "iso8583/iso8583.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS  7
#define ITERS 300000

static volatile size_t nallocs;

#if !defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);

void *malloc(size_t n)
{
    nallocs++;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    nallocs++;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    nallocs++;
    return __libc_realloc(p, n);
}
#else
#define COUNT_ALLOCS 0
#endif

static const uint8_t emv55[] = {
    0x9F, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x9F, 0x03, 0x06, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x9F, 0x1A, 0x02, 0x08, 0x40, 0x95, 0x05, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x5F, 0x2A, 0x02, 0x08, 0x40, 0x9A, 0x03, 0x26, 0x11, 0x22, 0x9C, 0x01,
    0x00, 0x9F, 0x37, 0x04, 0x11, 0x22, 0x33, 0x44, 0x82, 0x02, 0x19, 0x80, 0x9F, 0x36,
    0x02, 0x00, 0x01, 0x9F, 0x26, 0x08, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x9F, 0x27, 0x01, 0x80, 0x9F, 0x10, 0x07, 0x06, 0x01, 0x0A, 0x03, 0xA0, 0x00, 0x00,
    0x5A, 0x08, 0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19, 0x5F, 0x34, 0x01, 0x01,
};

/* the typical authorization request: 21 fields */
static void typical_0100(struct iso_msg *m)
{
    static const struct {
        int n;
        const char *v;
    } f[] = {
        {2, "4761739001010119"},
        {3, "000000"},
        {4, "000000001000"},
        {7, "1122093015"},
        {11, "123456"},
        {12, "093015"},
        {13, "1122"},
        {14, "2812"},
        {18, "5411"},
        {22, "051"},
        {23, "001"},
        {25, "00"},
        {32, "423935"},
        {35, "4761739001010119=28122011758928889"},
        {37, "632611123456"},
        {41, "TERM0001"},
        {42, "MERCHANT0000001"},
        {43, "ACME GROCERIES          SPRINGFIELD  USA"},
        {49, "840"},
    };
    iso_msg_init(m);
    if (iso_set_mti(m, "0100") != 0)
        abort();
    for (size_t i = 0; i < UTIL_NELEM(f); i++)
        if (iso_set(m, f[i].n, f[i].v, strlen(f[i].v)) != 0)
            abort();
    if (iso_set(m, 52, "\x74\x34\xF6\x78\x13\xBA\xE5\x45", 8) != 0 ||
        iso_set(m, 55, emv55, sizeof(emv55)) != 0)
        abort();
}

/*
 * CPU time of this thread in microseconds: the figure is per core even
 * when other processes share the machine (wall time would count their
 * slices as ours).
 */
static int64_t cpu_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_dbl);
    return v[n / 2];
}

int main(void)
{
    static struct iso_msg m, dec;
    static uint8_t wire[ISO_MAX_MSG];
    char errbuf[700];
    printf("typical 0100: 21 fields incl. 55 (%zu bytes of EMV data); median of %d runs x %d msgs, "
           "one core (thread CPU time)\n\n",
           sizeof(emv55), REPS, ITERS);
    printf("%-10s %6s %14s %14s %12s %12s\n", "dialect", "bytes", "decode msg/s", "encode msg/s",
           "allocs/dec", "allocs/enc");
    for (const char *const *name = iso_dialect_builtin_names(); *name; name++) {
        struct iso_dialect *d = iso_dialect_builtin(*name, errbuf, sizeof(errbuf));
        if (d == NULL) {
            fprintf(stderr, "%s\n", errbuf);
            return 1;
        }
        typical_0100(&m);
        size_t wl = 0;
        struct iso_err err;
        if (iso_encode(d, &m, wire, sizeof(wire), &wl, &err) != 0) {
            fprintf(stderr, "%s: %s\n", d->name, err.msg);
            return 1;
        }
        double dec_rate[REPS], enc_rate[REPS];
        size_t dec_allocs = 0, enc_allocs = 0, sink = 0;
        for (int r = 0; r < REPS; r++) {
            size_t a0 = nallocs;
            int64_t t0 = cpu_now_us();
            for (int i = 0; i < ITERS; i++) {
                if (iso_decode(d, wire, wl, &dec, &err) != 0 || iso_required_missing(&dec) != 0)
                    abort();
                sink += dec.f[4].len;
            }
            int64_t t1 = cpu_now_us();
            dec_allocs += nallocs - a0;
            dec_rate[r] = ITERS / ((double)(t1 - t0) / 1e6);
            a0 = nallocs;
            size_t ol;
            t0 = cpu_now_us();
            for (int i = 0; i < ITERS; i++) {
                if (iso_encode(d, &dec, wire, sizeof(wire), &ol, &err) != 0)
                    abort();
                sink += ol;
            }
            t1 = cpu_now_us();
            enc_allocs += nallocs - a0;
            enc_rate[r] = ITERS / ((double)(t1 - t0) / 1e6);
        }
        if (sink == 0)
            abort();
        if (COUNT_ALLOCS)
            printf("%-10s %6zu %14.0f %14.0f %12.3f %12.3f\n", d->name, wl, median(dec_rate, REPS),
                   median(enc_rate, REPS), (double)dec_allocs / (REPS * (double)ITERS),
                   (double)enc_allocs / (REPS * (double)ITERS));
        else
            printf("%-10s %6zu %14.0f %14.0f %12s %12s\n", d->name, wl, median(dec_rate, REPS),
                   median(enc_rate, REPS), "n/a", "n/a");
        iso_dialect_free(d);
    }
    return 0;
}
