/*
 * fuzz_audit.c - libFuzzer target for the audit log reader: the input is a
 * segment file's bytes; every record is parsed (framing, the msgpack
 * pre-check that bounds msgpack-c's allocations, the envelope), its field
 * names checked against its type and its fields looked up, as
 * `cardgatectl audit verify|dump|find` and the writer's recovery do.
 *
 * The fuzz build links iso8583/ crypto/ conf/ common/ only, so the reader
 * is compiled in here (which also reaches its static helpers).
 */
#include "daemon/audit_read.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"pan", "rrn", "stan", "why", "sig", "chain", "nope"};
    msgpack_unpacked u;
    size_t off = 0;
    char why[200], name[48], val[64];

    msgpack_unpacked_init(&u);
    for (;;) {
        struct audit_rec r;
        size_t used = 0;
        if (audit_rec_parse(data, size, off, &u, &r, &used, why, sizeof(why)) != AUDIT_PARSE_OK)
            break;
        if (used < 5 || used > size - off)
            abort(); /* a record is a prefix and at least one payload byte, inside the input */
        (void)check_fields(&r, name, sizeof(name));
        for (size_t i = 0; i < UTIL_NELEM(keys); i++) {
            (void)audit_rec_field(&r, keys[i]);
            (void)audit_rec_str(&r, keys[i], val, sizeof(val));
        }
        off += used;
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}
