/* launcher/cmd_coordinator.c: `ignis coordinator --listen ADDR --state DIR
 * [--key FILE --authorized-keys FILE] [--heartbeat-timeout S]`, the head-node
 * daemon (coordinator/daemon.c): CurveZMQ with a key, else loopback only. It
 * runs in the foreground, logs one line per event on stderr, and stops on
 * SIGINT or SIGTERM (exit 0); it exits 1 when it cannot start, 2 on a usage
 * error. */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "coordinator/daemon.h"
#include "launcher/commands.h"

int cmd_coordinator(int argc, char **argv) {
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"state", required_argument, NULL, 's'},
                                         {"heartbeat-timeout", required_argument, NULL, 't'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"authorized-keys", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    ig__coordd_opts o = {.heartbeat_timeout = 10};
    char *end;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': o.listen = optarg; break;
        case 's': o.state_dir = optarg; break;
        case 'k': o.key_file = optarg; break;
        case 'a': o.authorized_keys = optarg; break;
        case 't':
            o.heartbeat_timeout = strtod(optarg, &end);
            if (end == optarg || *end || !isfinite(o.heartbeat_timeout) || o.heartbeat_timeout <= 0 ||
                o.heartbeat_timeout > 3600)
                return cmd_usage("coordinator", "--heartbeat-timeout: expected seconds in (0, 3600], got '%s'", optarg);
            break;
        case 'h':
            fputs("usage: ignis coordinator --listen ADDR --state DIR [options]\n" COORDINATOR_HELP, stdout);
            return 0;
        case ':': return cmd_usage("coordinator", "option '%s' needs a value", argv[optind - 1]);
        default: return cmd_usage("coordinator", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cmd_usage("coordinator", "unexpected argument '%s'", argv[optind]);
    if (!o.listen) return cmd_usage("coordinator", "--listen ADDR is required");
    if (!o.state_dir) return cmd_usage("coordinator", "--state DIR is required");
    if (!o.key_file != !o.authorized_keys)
        return cmd_usage("coordinator", "%s needs %s too (CurveZMQ: the coordinator's key pair and the client keys it lets in)",
                     o.key_file ? "--key" : "--authorized-keys", o.key_file ? "--authorized-keys" : "--key");
    if (!o.key_file && !ig__coordd_local_endpoint(o.listen))
        return cmd_usage("coordinator", "--listen %s: plaintext is allowed on loopback only; give --key and --authorized-keys "
                     "(CurveZMQ) to listen on other addresses", o.listen);
    if (ig__coordd_run(&o)) {
        fprintf(stderr, "ignis: %s\n", ig_last_error());
        return 1;
    }
    return 0;
}
