/* sharding/ddp.c: placeholder, being written. */
typedef int ig__placeholder_sharding_ddp_c;
