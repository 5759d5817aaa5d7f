/* core/device.c: device names and parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/impl.h"

ig_device ig_device_parse(const char *name) {
    IG_CHECK(name, "device: NULL name");
    if (strcmp(name, "cpu") == 0) return IG_CPU;
    if (strcmp(name, "cuda") == 0) return IG_CUDA(0);
    if (strncmp(name, "cuda:", 5) == 0) {
        char *end;
        long i = strtol(name + 5, &end, 10);
        IG_CHECK(*end == 0 && end != name + 5 && i >= 0 && i < 1024,
                 "device: \"%s\" is not cpu, cuda or cuda:N", name);
        return IG_CUDA((int)i);
    }
    ig__fail(__FILE__, __LINE__, "device: \"%s\" is not cpu, cuda or cuda:N", name);
}

const char *ig_device_name(ig_device d) {
    static _Thread_local char ring[4][24];
    static _Thread_local int next;
    char *b = ring[next++ & 3];
    if (d.kind == IG_DEV_CPU) return "cpu";
    snprintf(b, 24, "cuda:%d", d.index);
    return b;
}

bool ig_device_eq(ig_device a, ig_device b) { return a.kind == b.kind && a.index == b.index; }
