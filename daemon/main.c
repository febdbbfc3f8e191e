/*
 * cardgated - the authorization daemon.
 *
 *   cardgated -c FILE      run in the foreground (as systemd wants)
 *   cardgated -t -c FILE   check the configuration and exit (0 good, 2 bad)
 */
#include "common/log.h"
#include "daemon/cardchk.h"
#include "daemon/config.h"
#include "daemon/pipeline.h"
#include "daemon/server.h"

#include <event2/event.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CARDGATE_VERSION
#define CARDGATE_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
    fprintf(out, "usage: cardgated [-t] [-d] -c FILE\n"
                 "  -c FILE  configuration file\n"
                 "  -t       check the configuration and exit\n"
                 "  -d       log at debug level\n"
                 "  -V       print the version\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int check_only = 0, debug = 0, ch;
    struct cg_config *cfg = malloc(sizeof(*cfg));
    struct conf_err err;
    struct event_base *base;
    struct server *srv;
    struct pipeline *pl;
    struct server_hooks hooks;

    if (cfg == NULL) {
        fprintf(stderr, "cardgated: out of memory\n");
        return 1;
    }

    log_init("cardgated", LOG_LVL_INFO);
    while ((ch = getopt(argc, argv, "c:tdVh")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = 1;
            break;
        case 'd':
            debug = 1;
            break;
        case 'V':
            printf("cardgated %s\n", CARDGATE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        free(cfg);
        return 2;
    }
    if (cg_config_load(path, cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        free(cfg);
        return 2;
    }
    if (check_only) {
        /*
         * Key names ([keys] cvk/pvk, listeners' zpk/zmk) are checked against
         * the key store when it can be read here; a named key it lacks is an
         * error.  A store or master key this user cannot read (an operator
         * without the service's credential) leaves the names unchecked: the
         * daemon checks them again at start and on every reload.
         */
        struct keyset *ks = NULL;
        char kerr[600];
        if (cfg->keys_file[0] != '\0' && cardchk_keys_open(cfg, &ks, kerr, sizeof(kerr)) < 0) {
            if (strncmp(kerr, cfg->path, strlen(cfg->path)) == 0) {
                fprintf(stderr, "%s\n", kerr);
                free(cfg);
                return 2;
            }
            fprintf(stderr, "%s: note: key names not checked: %s\n", path, kerr);
        }
        keyset_unref(ks);
        printf("%s: configuration is valid (%u listener%s)\n", path, cfg->nlisteners,
               cfg->nlisteners == 1 ? "" : "s");
        free(cfg);
        return 0;
    }
    if (debug)
        cfg->log_level = LOG_LVL_DEBUG;
    log_set_level((enum log_level)cfg->log_level);
    base = event_base_new();
    if (base == NULL) {
        log_warnx("cannot create the event base");
        free(cfg);
        return 1;
    }
    srv = server_new(base, cfg); /* owns cfg from here */
    if (srv == NULL) {
        log_warnx("out of memory");
        free(cfg);
        event_base_free(base);
        return 1;
    }
    if (debug)
        srv->log_level_override = LOG_LVL_DEBUG;
    log_info("cardgated %s starting with %s", CARDGATE_VERSION, path);
    pl = pipeline_new(base, srv);
    if (pl == NULL) {
        log_warnx("cannot start the request pipeline (see above)");
        server_free(srv);
        event_base_free(base);
        return 1;
    }
    pipeline_hooks(pl, &hooks);
    server_set_hooks(srv, &hooks);
    if (server_start(srv) != 0) {
        log_warnx("cannot start (see above)");
        pipeline_free(pl);
        server_free(srv);
        event_base_free(base);
        return 1;
    }
    if (event_base_dispatch(base) < 0) {
        log_warnx("event loop failed");
        pipeline_free(pl);
        server_free(srv);
        event_base_free(base);
        return 1;
    }
    log_info("stopped");
    pipeline_free(pl);
    server_free(srv);
    event_base_free(base);
    return 0;
}
