/* coordinator/proto.c: placeholder, being written. */
typedef int ig__placeholder_coordinator_proto_c;
