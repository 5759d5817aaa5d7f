/* tests/proto_samples.h: one valid body of every message type (JSON text),
 * shared by test_proto.c and fuzz_proto.c. Each sets every field its schema
 * knows, optional ones included, so a round trip exercises them all. */
#ifndef IGNIS_TESTS_PROTO_SAMPLES_H
#define IGNIS_TESTS_PROTO_SAMPLES_H

#include "ignis/proto.h"

static const char *const proto_samples[IG_MSG_COUNT] = {
    [IG_MSG_HELLO] = "{\"node\": \"gpu-node-07\", \"slots\": {\"cpus\": 64, \"gpus\": [0, 1, 2, 3]},"
                     " \"protocol\": 1, \"worker\": 12,"
                     " \"running\": [{\"job\": 3, \"attempt\": 1, \"rank\": 0}, {\"job\": 3, \"attempt\": 1, \"rank\": 1}]}",
    [IG_MSG_HELLO_ACK] = "{\"worker\": 12, \"heartbeat_ms\": 1000}",
    [IG_MSG_HEARTBEAT] = "{\"worker\": 12, \"ranks\": [{\"job\": 3, \"attempt\": 1, \"rank\": 0, \"step\": 250,"
                         " \"loss\": 2.3125}, {\"job\": 3, \"attempt\": 1, \"rank\": 1}]}",
    [IG_MSG_SUBMIT] = "{\"spec\": {\"name\": \"char-gpt\", \"train\": {\"steps\": 100, \"batch_size\": 8}},"
                      " \"ranks\": 4, \"min_ranks\": 2, \"max_ranks\": 8, \"max_restarts\": 3, \"strategy\": \"pack\"}",
    [IG_MSG_SUBMIT_ACK] = "{\"job\": 41}",
    [IG_MSG_STATUS] = "{\"job\": 41}",
    [IG_MSG_STATUS_REPLY] = "{\"jobs\": [{\"job\": 41, \"name\": \"char-gpt\", \"state\": \"running\","
                            " \"reason\": \"\", \"attempt\": 2, \"ranks\": 4, \"step\": 1200, \"loss\": 1.5,"
                            " \"tokens_per_s\": 51234.5}, {\"job\": 40, \"state\": \"failed\", \"attempt\": 0,"
                            " \"reason\": \"rank 2 exited with signal 9\"}]}",
    [IG_MSG_CANCEL] = "{\"job\": 41}",
    [IG_MSG_LOGS] = "{\"job\": 41, \"rank\": -1, \"offset\": 4096, \"max_bytes\": 65536, \"attempt\": 2}",
    [IG_MSG_LOGS_REPLY] = "{\"job\": 41, \"rank\": 0, \"offset\": 4096, \"data\": \"c3RlcCAxMDAgbG9zcyAyLjUK\","
                          " \"eof\": false, \"attempt\": 2, \"attempts\": 3}",
    [IG_MSG_START_RANKS] = "{\"job\": 41, \"attempt\": 2, \"spec\": {\"name\": \"char-gpt\"}, \"world\": 4,"
                           " \"ranks\": [{\"rank\": 2, \"local_rank\": 0, \"slot\": 0},"
                           " {\"rank\": 3, \"local_rank\": 1, \"slot\": 1}],"
                           " \"rendezvous\": \"tcp://10.0.0.1:5555\"}",
    [IG_MSG_RANK_EXIT] = "{\"job\": 41, \"attempt\": 2, \"rank\": 3, \"signal\": 9, \"time\": 1764142512.25}",
    [IG_MSG_ABORT] = "{\"job\": 41, \"attempt\": 2, \"reason\": \"rank 3 exited with signal 9\"}",
    [IG_MSG_RENDEZVOUS] = "{\"job\": 41, \"attempt\": 2, \"world\": 4, \"rank\": 3, \"address\": \"AAECAwQFBgc=\"}",
    [IG_MSG_RENDEZVOUS_REPLY] = "{\"job\": 41, \"attempt\": 2, \"world\": 2, \"rank\": 1,"
                                " \"addresses\": [\"AAECAwQFBgc=\", \"CAkKCw==\"]}",
    [IG_MSG_ERROR] = "{\"code\": \"IG_ERR_FORMAT\", \"message\": \"STATUS: field 'job': expected a"
                     " non-negative integer, got -3\"}",
    [IG_MSG_OK] = "{}",
    [IG_MSG_LOG_DATA] = "{\"worker\": 12, \"job\": 41, \"attempt\": 2, \"rank\": 3, \"offset\": 8192,"
                        " \"data\": \"c3RlcCAxMDAgbG9zcyAyLjUK\", \"final\": true}",
    [IG_MSG_LOG_ACK] = "{\"job\": 41, \"attempt\": 2, \"rank\": 3, \"size\": 8210, \"final\": true}",
};

#endif
