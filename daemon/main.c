/*
 * cardgated - the authorization daemon.
 *
 *   cardgated -c FILE      run in the foreground (as systemd wants)
 *   cardgated -t -c FILE   check the configuration and exit (0 good, 2 bad)
 */
#include "common/log.h"
#include "daemon/config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

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
    static struct cg_config cfg;
    struct conf_err err;

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
        return 2;
    }
    if (cg_config_load(path, &cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    if (check_only) {
        printf("%s: configuration is valid (%u listener%s)\n", path, cfg.nlisteners,
               cfg.nlisteners == 1 ? "" : "s");
        return 0;
    }
    log_set_level(debug ? LOG_LVL_DEBUG : (enum log_level)cfg.log_level);
    log_warnx("serving is not built yet (see the 'cardgated core' issue); use -t to check "
              "a configuration");
    return 1;
}
