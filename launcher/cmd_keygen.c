/* launcher/cmd_keygen.c: `ignis keygen FILE [--force]`: a CurveZMQ key pair
 * for the control plane (docs/protocol.md "Security"): FILE holds the pair
 * (mode 0600: give it to --key or IGNIS_KEY), FILE.pub the public key (give
 * it to the other side: a coordinator's --authorized-keys, a client's
 * IGNIS_COORDINATOR_KEY). Neither is overwritten without --force. Exit 0
 * with the public key printed, 1 when they cannot be written, 2 on a usage
 * error. */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "launcher/commands.h"

int cmd_keygen(int argc, char **argv) {
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool force = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': force = true; break;
        case 'h': return fputs("usage: ignis keygen FILE [--force]\n" KEYGEN_HELP, stdout), 0;
        default: return cmd_usage("keygen", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cmd_usage("keygen", "expected one FILE, got %d arguments", argc - optind);
    const char *path = argv[optind];
    ig_proto_keypair kp;
    ig_status st = ig_proto_keypair_generate(&kp);
    if (!st) st = ig_proto_keypair_save(path, &kp, force);
    if (st == IG_ERR_STATE) {
        fprintf(stderr, "ignis keygen: %s: not overwritten (--force replaces it)\n", ig_last_error());
        return 1;
    }
    if (st) {
        fprintf(stderr, "ignis keygen: %s\n", ig_last_error());
        return 1;
    }
    printf("wrote %s (the key pair, mode 0600) and %s.pub\npublic key: %s\n", path, path, kp.public_key);
    return 0;
}
