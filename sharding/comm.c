/* sharding/comm.c: placeholder, being written. */
typedef int ig__placeholder_sharding_comm_c;
