/*
 * iso8583.h - the ISO 8583 codec: dialects as data, zero-copy decode, encode
 * into caller buffers, validation, per-MTI required fields.
 *
 * Pure library: no I/O, no libevent, no heap allocation per message.  Only
 * dialect loading (iso_dialect_load*, iso_dialect_builtin) allocates.
 *
 * Logical form.  Every field value in a struct iso_msg is held in one
 * dialect-independent "logical" form, so daemon code is the same on every
 * link:
 *   n          ASCII digits, exactly as many as the field's length ("000000")
 *   an, ans    ASCII (ISO-8859-1) text
 *   z          ASCII track text: digits and '=' (separator), e.g. "4761..=2512..."
 *   x+n        one 'C' or 'D' then the digits ("D000000001000")
 *   b          the raw bytes
 * Conversion happens only at the wire edge: iso_decode() turns BCD and EBCDIC
 * into the logical form inside msg->scratch (part of the caller's struct, so
 * still no allocation); ASCII text and raw binary are not copied at all (the
 * view points into the caller's receive buffer).  iso_encode() converts back.
 * Views therefore live as long as both the receive buffer and the iso_msg.
 *
 * Field numbers are 1..192: 1 is the secondary bitmap, 65 the tertiary
 * bitmap when the dialect has one (otherwise an ordinary field); the codec
 * sets and reads those bits itself, callers never set 1 or (tertiary) 65.
 */
#ifndef CARDGATE_ISO8583_ISO8583_H
#define CARDGATE_ISO8583_ISO8583_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISO_MUST_CHECK __attribute__((warn_unused_result))

#define ISO_MAX_FIELD 192
/* largest wire message (without framing) we decode or encode */
#define ISO_MAX_MSG 8192
/* scratch for BCD/EBCDIC -> logical conversion: worst case 2 bytes per byte */
#define ISO_SCRATCH (2 * ISO_MAX_MSG)

enum iso_type { ISO_T_N, ISO_T_AN, ISO_T_ANS, ISO_T_B, ISO_T_Z, ISO_T_XN };
enum iso_lenkind { ISO_L_FIXED, ISO_L_LL, ISO_L_LLL, ISO_L_LLLL, ISO_L_LLLLLL };
/* data and length-prefix encodings */
enum iso_enc { ISO_E_ASCII, ISO_E_BCD, ISO_E_EBCDIC, ISO_E_BINARY };
enum iso_class { ISO_C_PUBLIC, ISO_C_PAN, ISO_C_TRACK, ISO_C_PIN, ISO_C_SECRET };
enum iso_composite { ISO_X_NONE, ISO_X_TLV, ISO_X_ORIG, ISO_X_SUBBITMAP };
enum iso_bitmap_enc { ISO_BM_BINARY, ISO_BM_HEX };

/*
 * One field's definition.  max is in logical units: digits for n/z/x+n
 * (x+n: digits without the sign), characters for an/ans, bytes for b.  For
 * fixed fields max is the exact length.
 */
struct iso_fdef {
    bool defined;
    uint8_t type;     /* enum iso_type */
    uint8_t lenkind;  /* enum iso_lenkind */
    uint8_t enc;      /* enum iso_enc of the data */
    uint8_t lenc;     /* enum iso_enc of the length prefix */
    uint8_t pad_left; /* BCD odd length: pad nibble first (1) or last (0) */
    uint8_t pad_nib;  /* BCD pad nibble written on encode (0x0 or 0xF) */
    uint8_t cls;      /* enum iso_class */
    uint8_t comp;     /* enum iso_composite */
    uint32_t max;
};

#define ISO_MAX_SUB 64

/* framing (frame.c): how a link delimits messages */
enum iso_frame_kind { ISO_FR_NONE, ISO_FR_LEN2, ISO_FR_LEN4ASCII, ISO_FR_LEN2BCD };
struct iso_framing {
    uint8_t kind;     /* enum iso_frame_kind */
    uint8_t hdr_len;  /* fixed header after the length (5 for a TPDU), counted in the length */
    bool tpdu_swap;   /* answer header = request header with bytes 1-2 and 3-4 swapped */
    uint32_t max_len; /* largest length value accepted (header + message) */
};

struct iso_dialect {
    char name[32];
    struct iso_framing framing;
    uint8_t mti_enc; /* ISO_E_ASCII, ISO_E_BCD or ISO_E_EBCDIC */
    uint8_t bm_enc;  /* enum iso_bitmap_enc (hex uses the text encoding) */
    uint8_t text_enc;
    bool tertiary; /* field 65 is the tertiary bitmap */
    struct iso_fdef f[ISO_MAX_FIELD + 1];
    /* sub-bitmap subfields (1..64) of the one ISO_X_SUBBITMAP field, if any */
    int sub_field;
    struct iso_fdef sub[ISO_MAX_SUB + 1];
};

struct iso_err {
    int field;     /* 0 when not about one field (MTI, bitmap: -1) */
    size_t offset; /* byte offset in the wire message */
    char msg[200];
};

struct iso_view {
    const uint8_t *p;
    uint32_t len;
};

struct iso_msg {
    char mti[4];
    uint64_t bm[3]; /* presence of fields 1..192, bit (63 - (n-1)%64) */
    struct iso_view f[ISO_MAX_FIELD + 1];
    size_t scratch_used;
    uint8_t scratch[ISO_SCRATCH];
};

/* code page 037 tables (ebcdic.c) */
extern const uint8_t iso_ebcdic_to_latin1[256];
extern const uint8_t iso_latin1_to_ebcdic[256];

/* ---- dialects (dialect.c) -------------------------------------------- */

/*
 * Parse dialect text (conf format, see conf/dialects/ascii87.conf for the
 * layout).  name is what errors call the file.  Returns a heap dialect or
 * NULL with "FILE:LINE: message" in errbuf.  Free with iso_dialect_free().
 */
struct iso_dialect *iso_dialect_parse(const char *name, const char *text, size_t len, char *errbuf,
                                      size_t errlen) ISO_MUST_CHECK;
/* The same from a file path. */
struct iso_dialect *iso_dialect_load(const char *path, char *errbuf, size_t errlen) ISO_MUST_CHECK;
/* A built-in dialect ("ascii87", "bcd87", "ebcdic87"), embedded at build time. */
struct iso_dialect *iso_dialect_builtin(const char *name, char *errbuf,
                                        size_t errlen) ISO_MUST_CHECK;
/* NULL-terminated list of the built-in names (a constant array). */
const char *const *iso_dialect_builtin_names(void);
void iso_dialect_free(struct iso_dialect *d);

/* embedded dialect texts (generated from conf/dialects/ at build time) */
struct iso_builtin_text {
    const char *name;
    const char *text;
    size_t len;
};
extern const struct iso_builtin_text iso_builtin_texts[];
extern const char *const iso_builtin_names[];
extern const size_t iso_builtin_count;

/* ---- message (iso8583.c) --------------------------------------------- */

/* Empty the message: no MTI, no fields, scratch reset. O(1): no memset of scratch. */
void iso_msg_init(struct iso_msg *m);
/* Set the MTI from 4 ASCII digits; -1 when not 4 digits. */
int iso_set_mti(struct iso_msg *m, const char *mti) ISO_MUST_CHECK;
bool iso_has(const struct iso_msg *m, int n);
/* The field's view, or NULL when absent or n out of range. */
const struct iso_view *iso_get(const struct iso_msg *m, int n);
/*
 * Point field n (2..192) at caller memory p[0..len) in logical form; the
 * memory must outlive the encode.  Validation happens in iso_encode().
 * Returns -1 when n is out of range or is a bitmap field.
 */
int iso_set(struct iso_msg *m, int n, const void *p, size_t len) ISO_MUST_CHECK;
/*
 * Answer building: point ans's fields at req's values for each of
 * fields[0..n) that req carries (views, no copy: req and its receive buffer
 * must outlive the encode of ans).  Returns how many were copied.
 */
size_t iso_echo(struct iso_msg *ans, const struct iso_msg *req, const uint8_t *fields, size_t n);
/* Like iso_set but copies the value into m->scratch; -1 when scratch is full. */
int iso_set_copy(struct iso_msg *m, int n, const void *p, size_t len) ISO_MUST_CHECK;
void iso_clear(struct iso_msg *m, int n);

/*
 * Decode one message buf[0..len) (no framing) into m, which is reset first.
 * Zero-copy where the wire is already logical, else converted into
 * m->scratch.  Checks every field's length and format (iso_check_value).
 * Never reads outside buf.  Returns 0, or -1 with err naming the field
 * and the offset ("field 35: length 41 exceeds max 37 at offset 57").
 */
int iso_decode(const struct iso_dialect *d, const uint8_t *buf, size_t len, struct iso_msg *m,
               struct iso_err *err) ISO_MUST_CHECK;
/*
 * Encode m into out[0..cap) (no framing); *outlen gets the length.  Validates
 * every present field against the dialect.  Returns 0, or -1 with err.
 */
int iso_encode(const struct iso_dialect *d, const struct iso_msg *m, uint8_t *out, size_t cap,
               size_t *outlen, struct iso_err *err) ISO_MUST_CHECK;

/*
 * Check a logical value against field n's definition: length within max
 * (exact for fixed), characters allowed by the type.  Returns 0 or -1 with
 * err ("field 4: non-digit 'A'").
 */
int iso_check_value(const struct iso_dialect *d, int n, const uint8_t *p, size_t len,
                    struct iso_err *err) ISO_MUST_CHECK;

/*
 * The first field a request of this MTI must carry that m lacks; 0 when
 * all are there or the MTI has no rule.  Rules for 0100 0200 0120 0220
 * 0400 0420 0421 0800 (DESIGN.md routes).
 */
int iso_required_missing(const struct iso_msg *m);

/* ---- composite fields (composite.c) ---------------------------------- */

/* Field 90, original data elements, split (views into the logical value). */
struct iso_orig {
    struct iso_view mti;       /* 4 */
    struct iso_view stan;      /* 6 */
    struct iso_view datetime;  /* 10, MMDDhhmmss */
    struct iso_view acquirer;  /* 11 */
    struct iso_view forwarder; /* 11 */
};
/* Split a 42-digit field 90; -1 with err when the length or a digit is wrong. */
int iso_orig_parse(const struct iso_view *v, struct iso_orig *o,
                   struct iso_err *err) ISO_MUST_CHECK;

/* BER-TLV (field 55).  Tags up to 4 bytes, lengths up to 4 bytes long-form. */
struct iso_tlv {
    uint32_t tag; /* the tag bytes as a big-endian number: 0x9F26, 0x5A */
    bool constructed;
    const uint8_t *v;
    uint32_t len;
    size_t offset; /* of the tag, within the TLV buffer */
};
/*
 * Iterate the top level of buf[0..len): *pos starts at 0.  Returns 1 with
 * *t filled, 0 at the end, -1 with err on malformed data (truncated tag or
 * length, length past the end, length of length > 4).  Padding bytes 0x00
 * and 0xFF between objects are skipped.
 */
int iso_tlv_next(const uint8_t *buf, size_t len, size_t *pos, struct iso_tlv *t,
                 struct iso_err *err) ISO_MUST_CHECK;
/* Check the whole buffer is well-formed, recursing into constructed tags. */
int iso_tlv_validate(const uint8_t *buf, size_t len, struct iso_err *err) ISO_MUST_CHECK;
/*
 * Find tag (recursing into constructed tags).  Returns 1 found, 0 absent,
 * -1 malformed.
 */
int iso_tlv_find(const uint8_t *buf, size_t len, uint32_t tag, struct iso_tlv *t,
                 struct iso_err *err) ISO_MUST_CHECK;
/* Write one TLV into out[0..cap); returns bytes written or -1 if no room. */
long iso_tlv_put(uint32_t tag, const uint8_t *v, size_t vlen, uint8_t *out, size_t cap);

/* Sub-bitmap field (field-127 style): an 8-byte binary bitmap then subfields. */
struct iso_sub {
    uint64_t bm;
    struct iso_view f[ISO_MAX_SUB + 1];
};
/*
 * Split the logical value of the dialect's sub-bitmap field into subfields
 * (views into the value; subfields must use ASCII or binary encodings).
 * Returns 0 or -1 with err ("field 127.2: ...").
 */
int iso_sub_parse(const struct iso_dialect *d, const struct iso_view *v, struct iso_sub *s,
                  struct iso_err *err) ISO_MUST_CHECK;
/* Build the value from s into out[0..cap); returns the length or -1 with err. */
long iso_sub_build(const struct iso_dialect *d, const struct iso_sub *s, uint8_t *out, size_t cap,
                   struct iso_err *err) ISO_MUST_CHECK;

/* ---- framing (frame.c) ----------------------------------------------- */

/* bytes of the length prefix for a framing kind (0 for ISO_FR_NONE) */
size_t iso_frame_prefix_len(const struct iso_framing *fr);
/*
 * Look for one frame at the start of buf[0..have).  Returns 1 with *msg_off
 * (prefix + header) and *msg_len (the ISO message) and *frame_len (all of
 * it, to drain), 0 when more bytes are needed, -1 with err when the length
 * is malformed (bad ASCII/BCD digits), larger than fr->max_len or smaller
 * than the header.  Never allocates: the caller keeps receiving into its own
 * buffer of at least prefix + max_len bytes.  ISO_FR_NONE treats the whole
 * buffer as one message.
 */
int iso_frame_parse(const struct iso_framing *fr, const uint8_t *buf, size_t have, size_t *msg_off,
                    size_t *msg_len, size_t *frame_len, struct iso_err *err) ISO_MUST_CHECK;
/*
 * Write the length prefix and header for an answer of msg_len bytes into
 * out[0..cap).  req_hdr is the request's header (hdr_len bytes, may be NULL
 * when hdr_len is 0): copied, with TPDU destination and source swapped when
 * fr->tpdu_swap.  Returns the bytes written (the message follows them), or
 * -1 when out is too small or msg_len does not fit the framing.
 */
long iso_frame_write_head(const struct iso_framing *fr, const uint8_t *req_hdr, size_t msg_len,
                          uint8_t *out, size_t cap) ISO_MUST_CHECK;

/* ---- dumps (dump.c) --------------------------------------------------- */

/*
 * JSON dump {"mti":"0100","fields":{"2":"476173******0010",...}} into
 * out[0..cap), NUL-terminated.  Masks by sensitivity class unless clear:
 * pan -> first six/last four, track/pin/secret -> all '*' (binary: "*"
 * hex-length), EMV tags 5A and 57 inside TLV fields likewise.  Composite
 * fields are nested objects (TLV tags as uppercase hex keys, field 90 parts,
 * sub-bitmap subfields).  Returns the length, or -1 when out is too small.
 */
long iso_dump_json(const struct iso_dialect *d, const struct iso_msg *m, bool clear, char *out,
                   size_t cap) ISO_MUST_CHECK;
/* One "NNN [class] value" line per field, masked the same way. */
long iso_dump_text(const struct iso_dialect *d, const struct iso_msg *m, bool clear, char *out,
                   size_t cap) ISO_MUST_CHECK;

#endif
